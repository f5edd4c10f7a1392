"""A loopback WebSocket server that floods pre-built Norman frames as fast as the socket takes them.

It speaks just enough HTTP: a subscribe upgrade gets `101` and then `--count` frames (each
`resource.change` of a ~`--size` byte `pod` object carrying its own sequence number in `seq`), after
which the connection stays open and quiet; every other request gets `404`. Frames are built from a
few hundred templates with the number spliced in, so the server itself is never the bottleneck.

Every `--secret-every`-th object is a Norman `secret` whose `data` holds `--secret`, and whose
description quotes it too, so a test can look for the value everywhere the client writes.

Run as its own process (the benchmarks and the memory tests measure the client alone):

    python -m benchmarks._fastserver --count 200000 --size 2048 [--sent-log FILE]

prints ``port N`` on stdout once listening. With ``--sent-log`` it appends ``seq monotonic`` after each
socket write, so a test can tell which frames had left the server by a given time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import socket
import struct
import sys
import threading
import time
from typing import IO

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OBJECTS = 500  # distinct object ids: a bounded cluster, so the client's object mirror stays bounded
_CHUNK = 1024 * 1024
# Filler that reads like Kubernetes text (names, hashes, image tags), fixed so every run sends the same bytes.
_WORDS = ("nginx", "web", "default", "kube-system", "64d85666f9", "running", "node-1", "10.42.2.202", "app")
_FILLER = " ".join(f"{_WORDS[i % len(_WORDS)]}-{i * 7919 % 10007:x}" for i in range(2000))


def frame_text(seq: int, size: int, secret: str | None = None, secret_every: int = 0, objects: int = _OBJECTS) -> str:
    """The Norman frame number `seq` (1-based), as the server sends it; `size` is roughly its length."""
    k = seq % objects
    if secret is not None and secret_every and seq % secret_every == 0:
        head = (
            f'{{"name":"resource.change","data":{{"baseType":"secret","data":{{"password":"{secret}"}},'
            f'"description":"the credential is {secret}","id":"default:s-{k}","namespaceId":"default",'
            f'"seq":{seq},"type":"secret","pad":"'
        )
    else:
        head = (
            f'{{"name":"resource.change","data":{{"id":"default:web-{k}","labels":{{"app":"web"}},'
            f'"name":"web-{k}","namespaceId":"default","seq":{seq},"state":"running","type":"pod","pad":"'
        )
    tail = '"}\n}'
    pad = max(0, size - len(head) - len(tail))
    start = seq % 500
    return head + _FILLER[start : start + pad] + tail


def ws_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def _handle(conn: socket.socket, args: argparse.Namespace, log: IO[str] | None) -> None:
    with conn:
        request = _read_request(conn)
        if request is None:
            return
        headers = {}
        for line in request.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get(b"sec-websocket-key")
        if key is None:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        lock = threading.Lock()  # whole chunks and pongs never interleave on the socket
        closed = threading.Event()
        threading.Thread(target=_answer_pings, args=(conn, lock, closed), daemon=True).start()
        buf: list[bytes] = []
        size = 0
        try:
            for seq in range(1, args.count + 1):
                f = ws_frame(frame_text(seq, args.size, args.secret, args.secret_every, args.objects).encode())
                buf.append(f)
                size += len(f)
                if size >= _CHUNK or seq == args.count:
                    with lock:
                        conn.sendall(b"".join(buf))
                    buf.clear()
                    size = 0
                    if log is not None:
                        log.write(f"{seq} {time.monotonic():.6f}\n")
                        log.flush()
            closed.wait()  # quiet until the client closes (the ping thread sees it)
        except OSError:
            return


def _answer_pings(conn: socket.socket, lock: threading.Lock, closed: threading.Event) -> None:
    """Read the client's (masked) frames: answer pings with pongs, stop at a close or EOF."""
    f = conn.makefile("rb")
    try:
        _pings(conn, f, lock)
    finally:
        f.close()
        closed.set()


def _pings(conn: socket.socket, f: IO[bytes], lock: threading.Lock) -> None:
    try:
        while True:
            head = f.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", f.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", f.read(8))[0]
            mask = f.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(f.read(n)))
            if opcode == 0x9:
                with lock:
                    conn.sendall(bytes((0x8A, len(payload))) + payload)
            elif opcode == 0x8:
                with lock:
                    conn.sendall(b"\x88\x00")
                conn.shutdown(socket.SHUT_RDWR)
                return
    except OSError:
        return


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--secret")
    p.add_argument("--secret-every", type=int, default=10)
    p.add_argument("--objects", type=int, default=_OBJECTS, help="distinct object ids (the cluster's size)")
    p.add_argument("--sent-log")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--sndbuf", type=int, default=8 << 20, help="socket send buffer, bytes (kernel may cap it)")
    args = p.parse_args(argv)
    log = open(args.sent_log, "a") if args.sent_log else None  # noqa: SIM115 - lives as long as the process
    srv = socket.create_server(("127.0.0.1", args.port))
    print(f"port {srv.getsockname()[1]}", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
        threading.Thread(target=_handle, args=(conn, args, log), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
