"""Reliability battery, hostile clients: `serve` (the replay server) and `simulate` (the simulator) go on serving.

Each server runs in a process of its own (`tests/_server_proc.py`) with asyncio's debug mode on its loop
(`slow_callback_duration` 0.1 s): after every attack the battery asks the server's own loop for the slow-callback
reports and fails on any, so a loop that spins is caught whatever input makes it spin; a loop that never yields
again is caught because the server stops answering. Memory is measured with tracemalloc inside the server's
process, never with timings.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import rancherlab as rl
from rancherlab.recording import RecordingWriter, read_recording

from .conftest import SECRET_TOKEN

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "token-battr:battery"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANSWER = 10.0  # seconds a free loop has to answer a command; a stuck one never does


class ServerProc:
    """A server in its own process, on a debug-mode loop; commands are answered from that loop."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests._server_proc", *args, "--token", TOKEN],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONASYNCIODEBUG": "1"},
        )
        line = self._line(60)
        assert line.startswith("READY "), line + self._stderr()
        self.url = line.split()[1]
        self.ws = self.url.replace("http", "ws", 1)

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read() if self.proc.stderr else ""

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        out: list[str] = []

        def read() -> None:
            out.append(self.proc.stdout.readline())  # type: ignore[union-attr]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not out:
            raise AssertionError(f"the server's event loop did not answer within {timeout:g} s (stuck or spinning)")
        return out[0].strip()

    def command(self, name: str) -> list[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        first = self._line(ANSWER)
        if not first.startswith("SLOW"):
            return [first]
        lines = [first]
        while lines[-1] != "END":
            lines.append(self._line(ANSWER))
        return lines

    def slow_callbacks(self) -> list[str]:
        """Slow-callback reports of the server's loop so far (our own memory probes left out)."""
        return [r for r in self.command("slow")[1:-1] if "_reply" not in r]

    def memory(self) -> int:
        """Bytes the server's process holds, traced by tracemalloc (started on first use), after a collection."""
        assert self.command("trace") == ["TRACING"]
        return int(self.command("mem")[0].split()[1])

    def blocks(self) -> int:
        """Memory blocks the server's interpreter holds after a full collection (`sys.getallocatedblocks`)."""
        return int(self.command("blocks")[0].split()[1])

    def assert_healthy(self) -> None:
        """The loop answers, `GET /` and the subscribe endpoint answer, and nothing held the loop."""
        assert self.slow_callbacks() == []
        r = httpx.get(self.url + "/", headers=AUTH, timeout=ANSWER)
        assert r.status_code < 500

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


# --- recordings from the simulator --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Steve recording (pods, namespaces) and a Norman one where `deployment` has snapshot objects but no frames."""
    folder = tmp_path_factory.mktemp("battery")
    steve_path, norman_full, norman_path = folder / "steve.jsonl", folder / "norman-full.jsonl", folder / "norman.jsonl"
    with rl.Simulator(seed=7, token=SECRET_TOKEN, rate=30, steve_ping=0.5, norman_ping=0.5) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]
        rl.capture(sim.url, "steve", types=["pod", "namespace"], credentials=SECRET_TOKEN, duration=1.5,
                   record=steve_path).wait()  # fmt: skip
        rl.capture(sim.url, f"project:{project}", types=["pod", "deployment"], credentials=SECRET_TOKEN,
                   duration=1.5, record=norman_full).wait()  # fmt: skip
    recording = read_recording(norman_full)
    with RecordingWriter(norman_path, recording.header) as writer:
        for event in recording:
            if not (event.kind == "frame" and event.type == "deployment"):
                writer.write(event)
    assert any(e.kind == "snapshot" and e.type == "deployment" for e in read_recording(norman_path))
    return {"steve": steve_path, "norman": norman_path}


@pytest.fixture(scope="module", params=["serve", "simulate"])
def server(request: pytest.FixtureRequest, recordings: dict[str, Path]) -> Iterator[ServerProc]:
    args = ("replay", str(recordings["steve"]), "--loop") if request.param == "serve" else ("simulate",)
    proc = ServerProc(*args)
    try:
        yield proc
    finally:
        proc.close()


def steve_endpoint(server: ServerProc) -> str:
    return server.ws + "/v1/subscribe"


async def _watch_answer(url: str, message: str) -> dict[str, Any]:
    async with connect(url, additional_headers=AUTH, open_timeout=ANSWER) as ws:
        await ws.send(message)
        while True:
            doc = json.loads(await asyncio.wait_for(ws.recv(), ANSWER))
            if doc.get("name") != "ping":
                return doc


# --- loops that must await or end, whatever a watch matches (issue: serve --loop froze) ------------------------


@pytest.mark.parametrize(
    "message",
    [
        '{"resourceType":"pod","namespace":"no-such-namespace"}',
        '{"resourceType":"pod","id":"nobody/nothing"}',
        '{"resourceType":"pod","selector":"app=none"}',
        '{"resourceType":"pod","namespace":"no-such-namespace","resourceVersion":"1"}',
        '{"resourceType":"namespace","resourceVersion":"999999999999"}',
    ],
)
def test_a_watch_that_matches_nothing_leaves_the_loop_free(server: ServerProc, message: str) -> None:
    first = asyncio.run(_watch_answer(steve_endpoint(server), message))
    assert first["name"] in ("resource.start", "resource.error")

    async def hold_it_open() -> None:  # the watch stays open while the loop is probed
        async with connect(steve_endpoint(server), additional_headers=AUTH) as ws:
            await ws.send(message)
            await asyncio.sleep(1.0)
            server.assert_healthy()

    asyncio.run(hold_it_open())


def test_norman_type_with_snapshot_objects_but_no_frames(recordings: dict[str, Path]) -> None:
    proc = ServerProc("replay", str(recordings["norman"]), "--loop")
    try:
        endpoint = read_recording(recordings["norman"]).header.endpoint.split("?")[0]

        async def go() -> None:
            async with connect(proc.ws + endpoint + "?resourceTypes=deployment", open_timeout=ANSWER):
                await asyncio.sleep(1.0)
                proc.assert_healthy()

        asyncio.run(go())
        proc.assert_healthy()
    finally:
        proc.close()


# --- hostile clients -------------------------------------------------------------------------------------------


def test_hundreds_of_clients_at_once(server: ServerProc) -> None:
    """200 sockets open at the same time, each with a watch; all answered, then all held open while probed."""
    clients = 200

    async def one(i: int, handshakes: asyncio.Semaphore, opened: asyncio.Barrier) -> str:
        async with handshakes:  # connecting in waves of 25 (a browser opens 6 at a time); all stay open together
            ws = await connect(steve_endpoint(server), additional_headers=AUTH, open_timeout=30)
        async with ws:
            await ws.send(json.dumps({"resourceType": "pod" if i % 2 else "namespace"}))
            while True:
                doc = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if doc.get("name") != "ping":
                    break
            await opened.wait()  # every client is connected and answered at this point
            if i == 0:
                await asyncio.to_thread(server.assert_healthy)
            await opened.wait()
            return str(doc["name"])

    async def all_of_them() -> list[str]:
        handshakes, opened = asyncio.Semaphore(25), asyncio.Barrier(clients)
        return await asyncio.gather(*(one(i, handshakes, opened) for i in range(clients)))

    before = server.blocks()
    names = asyncio.run(all_of_them())
    assert names.count("resource.start") == clients
    server.assert_healthy()
    time.sleep(0.5)  # the server sees the last closes
    grown = server.blocks() - before
    assert grown < 20_000, f"{grown} more memory blocks held once {clients} clients have gone"


def test_a_client_that_never_reads_is_bounded(server: ServerProc) -> None:
    """It sends thousands of messages that each get an answer and reads none: the server stops reading it."""

    async def go() -> None:
        host, port = server.url.rsplit("/", 1)[-1].rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, so the server's backlog shows
        sock.connect((host, int(port)))
        async with connect(
            steve_endpoint(server), additional_headers=AUTH, max_queue=1, sock=sock, compression=None
        ) as ws:
            ws.transport.pause_reading()  # never read: its TCP window fills, then the server's buffers
            before = server.memory()
            name = "no-such-type-" + "x" * 16_000  # each answer (error, stop) echoes it: 48 KB a message
            sent = 0
            for i in range(600):
                try:
                    await asyncio.wait_for(ws.send(json.dumps({"resourceType": f"{name}-{i}"})), 2)
                except TimeoutError:
                    break  # the server stopped reading us: that is the bound
                sent += 1
            await asyncio.sleep(0.5)
            grown = server.memory() - before
            server.assert_healthy()
            ws.transport.abort()  # it never reads, so it cannot take part in a closing handshake either
        # 600 messages ask for 29 MB of answers; the kernel's buffers take a few MB, the server holds at most ~1 MB
        assert grown < 4_000_000, f"the server holds {grown} bytes more for one client that never reads ({sent} sent)"

    asyncio.run(go())


def test_open_close_churn_and_bad_upgrades_leave_nothing_behind(server: ServerProc) -> None:
    """Sockets opened and dropped, upgrades without Sec-WebSocket-Key: memory does not grow with their number."""

    async def raw(request: bytes) -> bytes:
        host, port = server.url.rsplit("/", 1)[-1].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(65536), ANSWER)
        finally:
            writer.close()

    no_key = (
        b"GET /v1/subscribe HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
    )

    async def churn(n: int) -> None:
        for start in range(0, n, 10):
            answers = await asyncio.gather(*(raw(no_key) for _ in range(min(10, n - start))))
            assert all(a.startswith(b"HTTP/1.1 400") for a in answers), answers[0][:200]

    async def open_close(n: int) -> None:
        for _ in range(n):
            async with connect(steve_endpoint(server), additional_headers=AUTH):
                pass

    asyncio.run(churn(100))  # warm up
    asyncio.run(open_close(20))
    before = server.blocks()
    asyncio.run(churn(400))
    asyncio.run(open_close(60))
    grown = server.blocks() - before
    # a refused upgrade that left its connection behind held ~12.7 KB in well over 50 blocks
    assert grown < 5_000, f"{grown} more memory blocks held after 400 refused upgrades and 60 open/close"
    server.assert_healthy()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello to a plain port
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(500)) + b"\r\n",
        b"POST /v1/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 65536,
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00" * 4096,
    ],
    ids=["tls", "garbage", "long-header", "many-headers", "huge-body", "huge-path", "nul"],
)
def test_malformed_and_huge_requests(server: ServerProc, request_bytes: bytes) -> None:
    async def go() -> bytes:
        host, port = server.url.rsplit("/", 1)[-1].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(request_bytes)
            await writer.drain()
        except ConnectionError:
            return b""
        try:
            return await asyncio.wait_for(reader.read(65536), 1.0)
        except (ConnectionError, TimeoutError):
            return b""  # still waiting for the rest of a request (until websockets' open timeout), or dropped
        finally:
            await asyncio.to_thread(server.assert_healthy)  # while that connection is still open
            writer.close()

    answer = asyncio.run(go())
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
    server.assert_healthy()


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        b"\x00\x01binary",
        "{" * 10_000,
        json.dumps({"resourceType": "x" * 500_000}),
        '{"resourceType":["pod"]}',
    ],
    ids=["not-json", "binary", "deep", "long", "wrong-type"],
)
def test_malformed_messages_on_the_socket(server: ServerProc, message: str | bytes) -> None:
    async def go() -> None:
        async with connect(steve_endpoint(server), additional_headers=AUTH, max_size=None) as ws:
            await ws.send(message)
            while True:
                doc = json.loads(await asyncio.wait_for(ws.recv(), ANSWER))
                if doc.get("name") != "ping":
                    break
            assert doc["name"] == "resource.error"

    asyncio.run(go())
    server.assert_healthy()


def test_a_message_too_big_closes_that_socket_only(server: ServerProc) -> None:
    async def go() -> int | None:
        async with connect(steve_endpoint(server), additional_headers=AUTH, max_size=None) as ws:
            await ws.send('{"resourceType":"' + "p" * (4 << 20) + '"}')
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(ws.recv(), ANSWER)
            return info.value.rcvd.code if info.value.rcvd else None

    assert asyncio.run(go()) == 1009  # message too big
    server.assert_healthy()


def test_too_many_watches_on_one_socket_are_refused(server: ServerProc) -> None:
    async def go() -> list[str]:
        async with connect(steve_endpoint(server), additional_headers=AUTH) as ws:
            for i in range(1001):
                await ws.send(json.dumps({"resourceType": "pod", "namespace": f"ns-{i}"}))
            names = []
            while len([n for n in names if n != "ping"]) < 1002:
                names.append(json.loads(await asyncio.wait_for(ws.recv(), ANSWER))["name"])
            return [n for n in names if n != "ping"]

    names = asyncio.run(go())
    assert names.count("resource.start") == 1000 and names[-2:] == ["resource.error", "resource.stop"]
    server.assert_healthy()


@pytest.mark.parametrize(
    "path",
    [
        "/../../../../etc/passwd",
        "/v1/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../pyproject.toml",
        "/v1/pods/..%2f..%2f..%2fetc%2fpasswd",
        "/v3/..",
    ],
)
def test_dot_dot_paths_reach_no_file(server: ServerProc, path: str) -> None:
    async def go() -> bytes:
        host, port = server.url.rsplit("/", 1)[-1].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(1 << 20), ANSWER)
        finally:
            writer.close()

    answer = asyncio.run(go())
    assert answer.startswith((b"HTTP/1.1 404", b"HTTP/1.1 400", b"HTTP/1.1 200")), answer[:200]
    assert b"root:" not in answer and b"[project]" not in answer
    if answer.startswith(b"HTTP/1.1 200"):
        assert b"<html" in answer.lower() or b'"type":"collection"' in answer  # the page or a list, nothing else
    server.assert_healthy()
