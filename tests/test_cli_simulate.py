"""`rancherlab simulate` as a user runs it: a real subprocess, its printed URL and token, and clients connecting."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .conftest import SECRET_TOKEN

ROOT = Path(__file__).resolve().parents[1]
TOKEN = re.compile(r"token-[a-z0-9]{5}:[a-z0-9]{40,}")
STARTUP = 20.0  # seconds for the interpreter to import rancherlab and bind, on a slow CI machine


@dataclass
class Running:
    """A `rancherlab simulate` process and what it printed up to "Ctrl-C to stop."."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines)

    @property
    def url(self) -> str:
        m = re.search(r"listening on (\S+)", self.stdout)
        assert m, self.stdout
        return m.group(1)

    def ws(self, path: str) -> str:
        return self.url.replace("http", "ws", 1) + path


def _reader(stream: Any, into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put(None)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rancherlab", "simulate", *args]


@contextmanager
def simulate(*args: str) -> Iterator[Running]:
    """Start the CLI, wait for its banner, and always stop it (SIGTERM, then SIGKILL) however the test ends."""
    proc = subprocess.Popen(_command(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    running = Running(proc)
    try:
        deadline = time.monotonic() + STARTUP
        while not running.lines or running.lines[-1] != "Ctrl-C to stop.":
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no banner within {STARTUP} s; so far: {running.stdout!r}")
            if line is None:
                pytest.fail(f"exited {proc.wait()} before its banner: {running.stdout!r} {proc.stderr.read()!r}")  # type: ignore[union-attr]
            running.lines.append(line)
        yield running
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_to_end(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(*args), check=False, cwd=ROOT, capture_output=True, text=True, timeout=STARTUP)


async def first_steve_message(url: str, token: str, resource_type: str = "pod", **kw: Any) -> dict[str, Any]:
    """The first message that is not a ping, reconnecting if `--drop-every` happened to cut the socket first."""
    for attempt in range(3):
        try:
            async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, **kw) as conn:
                await conn.send(json.dumps({"resourceType": resource_type}))
                while True:
                    msg: dict[str, Any] = json.loads(await asyncio.wait_for(conn.recv(), 5))
                    if msg["name"] != "ping":
                        return msg
        except ConnectionClosed:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------------------- tokens


def test_prints_the_url_and_a_generated_token_that_clients_can_use() -> None:
    with simulate("--rate", "0", "--steve-ping", "0.2") as sim:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url)
        tokens = TOKEN.findall(sim.stdout)
        assert len(tokens) == 1, sim.stdout
        token = tokens[0]
        assert asyncio.run(first_steve_message(sim.ws("/v1/subscribe"), token))["name"] == "resource.start"
        assert httpx.get(sim.url + "/v1/pods", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(sim.url + "/v1/pods", headers={"Authorization": f"Bearer {token}x"}).status_code == 401


def test_a_given_token_is_accepted_and_never_printed() -> None:
    with simulate("--token", SECRET_TOKEN, "--rate", "0") as sim:
        assert SECRET_TOKEN not in sim.stdout and SECRET_TOKEN.split(":")[1] not in sim.stdout
        assert not TOKEN.search(sim.stdout)
        assert asyncio.run(first_steve_message(sim.ws("/v1/subscribe"), SECRET_TOKEN))["name"] == "resource.start"

        async def refused() -> int:
            with pytest.raises(InvalidStatus) as info:
                async with connect(
                    sim.ws("/v3/subscribe"), additional_headers={"Authorization": "Bearer token-other:x"}
                ):
                    pass
            return info.value.response.status_code

        assert asyncio.run(refused()) == 401
        sim.proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        assert sim.proc.wait(10) == 0
        assert SECRET_TOKEN not in sim.proc.stderr.read()  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------- flags


def test_fault_and_store_flags_are_accepted_and_take_effect() -> None:
    flags = (
        "--token",
        SECRET_TOKEN,
        "--rate",
        "0",
        "--seed",
        "4",
        "--steve-ping",
        "0.2",
        "--norman-ping",
        "0.2",
        "--drop-every",
        "0.8",
        "--stall-after",
        "30",
        "--watch-timeout",
        "30",
        "--steve-retain",
        "50",
        "--steve-store",
        "proxy",
        "--forbid",
        "secret",
        "--forbid",
        "namespacedSecret",
        "--count-interval",
        "0.5",
    )
    with simulate(*flags) as sim:
        url = sim.ws("/v1/subscribe")
        assert asyncio.run(first_steve_message(url, SECRET_TOKEN, "pod"))["name"] == "resource.start"
        denied = asyncio.run(first_steve_message(url, SECRET_TOKEN, "secrets"))
        assert denied == {
            "name": "resource.error",
            "resourceType": "secrets",
            "data": {"error": "PermissionDenied 403: can not list secrets"},
        }

        async def proxy_replay_then_dropped() -> tuple[list[str], float]:
            async with connect(url, additional_headers={"Authorization": f"Bearer {SECRET_TOKEN}"}) as conn:
                await conn.send('{"resourceType":"pod"}')
                names, start = [], time.monotonic()
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        names.append(json.loads(await asyncio.wait_for(conn.recv(), 5))["name"])
                assert info.value.rcvd is None  # --drop-every: 1006, no close frame
                return names, time.monotonic() - start

        names, lifetime = asyncio.run(proxy_replay_then_dropped())
        assert names[0] == "resource.start" and "resource.create" in names  # --steve-store proxy replays
        assert lifetime < 2.0


def test_certfile_without_keyfile_is_a_usage_error_on_stderr(tmp_path: Path) -> None:
    done = run_to_end("--certfile", str(tmp_path / "cert.pem"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--certfile and --keyfile go together" in done.stderr


def test_unreadable_certificate_is_a_tls_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    done = run_to_end("--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"))
    assert done.returncode == 5 and done.stdout == ""
    assert (
        done.stderr.startswith("rancherlab simulate: cannot load --certfile/--keyfile")
        and "Traceback" not in done.stderr
    )


def test_a_taken_port_is_reported_without_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = run_to_end("--port", str(taken.getsockname()[1]), "--rate", "0")
    assert done.returncode == 1 and done.stdout == ""
    assert "cannot listen on 127.0.0.1:" in done.stderr and "Traceback" not in done.stderr


def test_certfile_and_keyfile_serve_wss(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with simulate(
        "--token",
        SECRET_TOKEN,
        "--rate",
        "0",
        "--certfile",
        str(tmp_path / "server.pem"),
        "--keyfile",
        str(tmp_path / "key.pem"),
    ) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        assert sim.ws("/v1/subscribe").startswith("wss://")
        msg = asyncio.run(first_steve_message(sim.ws("/v1/subscribe"), SECRET_TOKEN, ssl=client))
        assert msg["name"] == "resource.start"
        body = httpx.get(
            sim.url + "/v1/pods", headers={"Authorization": f"Bearer {SECRET_TOKEN}"}, verify=client
        ).json()
        assert body["links"]["self"].startswith("https://127.0.0.1:")

        async def untrusted() -> None:
            with pytest.raises(ssl.SSLCertVerificationError):
                async with connect(
                    sim.ws("/v1/subscribe"),
                    additional_headers={"Authorization": f"Bearer {SECRET_TOKEN}"},
                    ssl=ssl.create_default_context(),
                ):
                    pass

        asyncio.run(untrusted())
