"""Server plumbing the simulator and the replay server share, so both send, ping, drop and answer HTTP alike.

`Outbox` is the per-connection send path (one writer task, a bounded buffer, stall and 1006 abort),
`every` the per-connection ticker, `http_response` a plain HTTP answer from websockets' `process_request`
hook, and `CredentialScrubbingLogger` keeps credentials out of websockets' DEBUG handshake logs. The
background event loop behind their synchronous handles is `rancherlab._loop.LoopThread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

from .scope import CREDENTIAL_PARAMS

# What a client may make a server hold, whatever it sends, however long it stays (see `Outbox.settle`):
MAX_CLIENT_MESSAGE = 1 << 20  # bytes; Rancher's subscribe messages are a few hundred (a bigger one closes with 1009)
MAX_BACKLOG = 1000  # messages queued for a client before the server stops reading what that client sends
MAX_BACKLOG_BYTES = 1 << 20  # the same, in characters queued
_YIELD_EVERY = 32  # messages an Outbox sends before it lets the loop run something else
MAX_WATCHES = 1000  # Steve watches one socket may hold at once (the dashboard holds a few dozen)
TOO_MANY_WATCHES = f"too many watches on this connection (at most {MAX_WATCHES}): stop one before starting another"


class Outbox:
    """Everything a connection sends goes through here, in order, from one task.

    Resource events are bounded like Rancher's per-subscriber channel (100 items): `offer` returns
    False when the buffer is full, and the caller decides what a slow consumer costs (Norman drops
    the socket, Steve stops the watch). Control messages (pings, start/stop/error) are never refused.
    `put` waits for room instead, for senders that should slow down rather than lose anything (replay).
    """

    def __init__(self, connection: ServerConnection, *, capacity: int = 100) -> None:
        self.connection = connection
        self.capacity = capacity
        self._queue: deque[tuple[str, bool]] = deque()
        self._queued_bytes = 0
        self._bounded = 0
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self.stalled = False
        self.sent = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def offer(self, text: str) -> bool:
        """Queue a resource event unless the buffer is full."""
        if self._bounded >= self.capacity:
            return False
        self._bounded += 1
        self._queue.append((text, True))
        self._queued_bytes += len(text)
        self._wakeup.set()
        return True

    async def put(self, text: str) -> None:
        """Queue a resource event, waiting while the buffer is full (back-pressure from a slow client)."""
        while not self.offer(text):
            if self._task.done():
                raise ConnectionError("the connection is closed")
            self._room.clear()
            await self._room.wait()

    def push(self, text: str) -> None:
        """Queue a control message; never refused (a reader bounds them with `settle`)."""
        self._queue.append((text, False))
        self._queued_bytes += len(text)
        self._wakeup.set()

    @property
    def backlog(self) -> tuple[int, int]:
        """Messages queued and not yet sent, and their characters."""
        return len(self._queue), self._queued_bytes

    async def settle(self, limit: int = MAX_BACKLOG, limit_bytes: int = MAX_BACKLOG_BYTES) -> None:
        """Wait while more than `limit` messages (or `limit_bytes` characters) wait to be sent, so a client that
        sends but never reads stops being read (TCP then slows it down) instead of growing the server's memory,
        as apiserver's reader blocks on the socket's full event channel. Returns at once when the connection
        is gone. Always lets the loop run other work first: a burst of client messages, all parsed from one
        read, is then handled one message per step, however many arrived together."""
        await asyncio.sleep(0)
        while (len(self._queue) > limit or self._queued_bytes > limit_bytes) and not self._task.done():
            self._room.clear()
            await self._room.wait()

    @property
    def full(self) -> bool:
        return self._bounded >= self.capacity

    def stall(self) -> None:
        """Keep the TCP connection open and send nothing more, as a hung proxy or server would."""
        self.stalled = True

    def abort(self) -> None:
        """Close the TCP connection without a close frame: the client sees 1006, as with gorilla's Close."""
        self.stalled = True
        transport = self.connection.transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    async def _run(self) -> None:
        try:
            with contextlib.suppress(ConnectionClosed, asyncio.CancelledError, OSError):
                while True:
                    while not self._queue or self.stalled:
                        self._wakeup.clear()
                        await self._wakeup.wait()
                    text, bounded = self._queue.popleft()
                    self._queued_bytes -= len(text)
                    if bounded:
                        self._bounded -= 1
                    self._room.set()
                    await self.connection.send(text)  # does not suspend while the socket takes it at once
                    self.sent += 1
                    if not self.sent % _YIELD_EVERY:
                        await asyncio.sleep(0)  # so a long backlog is never sent in one step of the loop
        finally:
            self._room.set()  # release a `put` waiting on a connection that is gone

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def every(interval: float, fn: Callable[[], None]) -> asyncio.Task[None]:
    """Call `fn` every `interval` seconds (first call after one interval) until cancelled."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            fn()

    return asyncio.get_running_loop().create_task(loop())


def http_response(
    status: int, body: str | bytes, *, content_type: str = "application/json", extra: Mapping[str, str] | None = None
) -> Response:
    """A complete plain-HTTP answer for websockets' `process_request` hook."""
    data = body.encode() if isinstance(body, str) else body
    # websockets closes the connection after any answer that is not an upgrade: say so, so clients don't reuse it
    headers = Headers(
        {"Content-Type": content_type, "Content-Length": str(len(data)), "Connection": "close", **(extra or {})}
    )
    return Response(status, HTTPStatus(status).phrase, headers, data)


def is_upgrade(headers: Headers) -> bool:
    """A WebSocket upgrade request, as gorilla's Upgrader checks it (anything else gets its 400)."""
    connection = [t.strip().lower() for t in headers.get("Connection", "").split(",")]
    return "upgrade" in connection and headers.get("Upgrade", "").lower() == "websocket"


_ACCEPTED: weakref.WeakKeyDictionary[Server, weakref.WeakSet[ServerConnection]] = weakref.WeakKeyDictionary()


class TrackedConnection(ServerConnection):
    """A connection that registers itself on accept (`serve(create_connection=TrackedConnection)`).

    websockets only lists connections once their handshake is done; a socket still waiting for its
    HTTP request could not be dropped on shutdown and would outlive the event loop.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        _ACCEPTED.setdefault(self.server, weakref.WeakSet()).add(self)


async def close_server(server: Server) -> None:
    """Stop listening and drop every connection as Rancher going away would (no close frame: 1006).

    That includes sockets still waiting for their HTTP request (browsers open spare ones; they are
    known when the server was made with `TrackedConnection`), which websockets' own close would wait
    out until its open timeout.
    """
    server.close(close_connections=False)
    for connection in {*server.all_connections, *_ACCEPTED.get(server, ())}:
        if connection.transport is not None:
            connection.transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 5)


_CREDENTIAL_HEADER = re.compile(r"(?im)^([<>] )?(authorization|cookie|set-cookie):[^\r\n]*")
_TOKEN_PARAM = re.compile(
    r"(?i)([?&](?:" + "|".join(sorted(map(re.escape, CREDENTIAL_PARAMS), key=len, reverse=True)) + r")=)[^&\s#]*"
)


class CredentialScrubbingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs request lines and headers at DEBUG; credentials there become `***`.

    A server that accepts any credential cannot list the secrets to hide, so this hides by shape:
    the Authorization and Cookie headers, and `token=` style query parameters.
    """

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(map(str, (msg, *args)))
        text = _TOKEN_PARAM.sub(
            r"\1***", _CREDENTIAL_HEADER.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}: ***", text)
        )
        kwargs.pop("stacklevel", None)
        self.logger.log(level, "%s", text, **kwargs)
