"""`rancherlab record` against a server that sends hostile frames between good ones: the recording goes on.

The server is the test's own: a raw loopback socket that answers REST with empty collections and, on the
upgrade, writes pre-built WebSocket frames as fast as the socket takes them (no websockets library in between,
so it can send what a library would refuse to).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rancherlab.protocol import ANOMALY, norman
from rancherlab.recording import read_recording

from .conftest import SECRET_TOKEN

pytestmark = pytest.mark.timeout(90)

TOKEN = SECRET_TOKEN
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_message(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final WebSocket frame (server to client), RFC 6455 section 5.2."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


def good(i: int) -> bytes:
    obj = {"type": "pod", "id": f"default:web-{i}", "name": f"web-{i}", "state": "running", "note": "x" * 1500}
    return ws_message(norman.change_frame(obj).encode())


def deep(depth: int) -> str:
    return '{"name":"resource.change","data":{"id":"d","type":"pod","x":' + "[" * depth + "]" * depth + "}\n}"


@dataclass
class FastServer:
    """Serves `script` (pre-built frames) to every subscribe socket, then stays open until the client leaves."""

    script: list[bytes]
    sock: socket.socket = field(default_factory=socket.socket)
    upgrades: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def start(self) -> FastServer:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:] if line)}
            if headers.get(b"upgrade", b"").lower() != b"websocket":
                body = b'{"value":"v2.12.0"}' if b"server-version" in path else b'{"type":"collection","data":[]}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                return
            self.upgrades += 1
            accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + _GUID).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            conn.sendall(b"".join(self.script))
            try:  # read (and drop) what the client sends until it closes
                while conn.recv(65536):
                    pass
            except OSError:
                pass


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("RANCHER_")}
    out["RANCHER_CONFIG_DIR"] = str(tmp_path / "no-rancher-cli")
    return out


@pytest.fixture
def serve() -> Iterator[list[FastServer]]:
    started: list[FastServer] = []
    yield started
    for server in started:
        server.close()


def record(url: str, out: Path, count: int, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["record", "-q", "--url", url, "--scope", "global", "--token", TOKEN, "--out", str(out), *extra]
    return subprocess.run(
        [sys.executable, "-m", "rancherlab", *argv, "--count", str(count), "--duration", "30"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_deeply_nested_frame_is_one_anomaly_and_the_recording_goes_on(
    tmp_path: Path, env: dict[str, str], serve: list[FastServer], depth: int
) -> None:
    bad = deep(depth)
    server = FastServer([*(good(i) for i in range(10)), ws_message(bad.encode()), *(good(i) for i in range(10, 40))])
    serve.append(server.start())
    out = tmp_path / "deep.jsonl"
    done = record(server.url, out, 40, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and TOKEN.split(":")[1] not in done.stderr
    events = [e for e in read_recording(out) if e.kind in ("frame", "marker") and e.name != "connected"]
    frames = [e for e in events if e.kind == "frame" and e.name == "resource.change"]
    anomalies = [e for e in events if e.name == ANOMALY]
    assert [e.id for e in frames] == [f"default:web-{i}" for i in range(40)]  # all of them, in order
    assert len(anomalies) == 1 and anomalies[0].raw == bad and "nested more than" in anomalies[0].info["error"]
    assert events.index(anomalies[0]) == 10  # where it arrived: after the 10th good frame
    assert server.upgrades == 1  # no reconnect: the connection itself never failed


def test_every_kind_of_hostile_frame_is_kept_and_the_recording_goes_on(
    tmp_path: Path, env: dict[str, str], serve: list[FastServer]
) -> None:
    hostile: list[tuple[bytes, str]] = [
        (ws_message(b"this is not json {{{"), "not JSON"),
        (ws_message(b'{"name":"resource.change","data":{"id":"n\x00ul","type":"pod"}\n}'), "NUL byte"),
        (ws_message(b'{"name":"resource.change","data":{"id":"\xff\xfe","type":"pod"}\n}', opcode=0x2), "not UTF-8"),
        (
            ws_message(
                b'{"name":"resource.change","resourceType":"pod","revision":"9","data":{"id":"a","type":"pod"}}'
            ),
            "dialect='steve'",
        ),
        (ws_message(deep(100_000).encode()), "nested more than"),
        (ws_message(b"[]"), "not an object"),
    ]
    unknown = b'{"name":"resource.frobnicate","data":{"id":"u","type":"pod"}\n}'
    script = [good(0)]
    for i, (frame, _) in enumerate(hostile, 1):
        script += [frame, good(i)]
    script += [ws_message(unknown), ws_message(norman.change_frame({"type": "pod", "id": "bin"}).encode(), opcode=0x2)]
    script += [good(i) for i in range(len(hostile) + 1, 20)]
    server = FastServer(script)
    serve.append(server.start())
    out = tmp_path / "hostile.jsonl"
    done = record(server.url, out, 22, env)  # 20 good ones, the binary one holding a good one, resource.frobnicate
    assert done.returncode == 0, done.stderr
    events = list(read_recording(out))
    anomalies = [e for e in events if e.name == ANOMALY]
    assert [why in a.info["error"] for a, (_, why) in zip(anomalies, hostile, strict=True)] == [True] * len(hostile)
    assert all(a.raw for a in anomalies)
    changes = [e.id for e in events if e.kind == "frame" and e.name == "resource.change"]
    assert changes[: len(hostile) + 1] == [f"default:web-{i}" for i in range(len(hostile) + 1)]
    assert "bin" in changes and len(changes) == 21, [(e.kind, e.name, e.id) for e in events]
    assert [e.raw for e in events if e.name == "resource.frobnicate"] == [unknown.decode()]
    assert server.upgrades == 1
    assert json.loads(out.read_text().splitlines()[-1])["summary"]["stopped_by"] == "count"


def test_a_frame_over_max_frame_bytes_is_an_anomaly_and_the_connection_goes_on(
    tmp_path: Path, env: dict[str, str], serve: list[FastServer]
) -> None:
    big = norman.change_frame({"type": "pod", "id": "big", "items": [f"{i:0100d}" for i in range(1500)]}).encode()
    assert 100_000 < len(big) < 200_000  # over the limit given below, under twice it
    server = FastServer([*(good(i) for i in range(5)), ws_message(big), *(good(i) for i in range(5, 10))])
    serve.append(server.start())
    out = tmp_path / "big.jsonl"
    done = record(server.url, out, 10, env, "--max-frame-bytes", "100000")
    assert done.returncode == 0, done.stderr
    events = [e for e in read_recording(out) if e.name != "connected"]
    assert [e.id for e in events if e.kind == "frame"] == [f"default:web-{i}" for i in range(10)]
    (anomaly,) = [e for e in events if e.name == ANOMALY]
    assert events.index(anomaly) == 5 and anomaly.info["bytes"] == len(big) and anomaly.info["truncated"] is True
    assert big.decode().startswith(anomaly.raw) and len(anomaly.raw) > 60_000
    assert "max_frame_bytes" in anomaly.info["error"] and server.upgrades == 1
