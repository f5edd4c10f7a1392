"""The fault proxy: a Rancher on loopback that does to a client what Rancher and the network in front of it do.

It forwards every upgrade and REST call to an upstream that speaks Rancher's API (the simulator or the replay
server), watches what the client does, and injects faults the way Rancher shows them on the wire:

* `drop()`: every socket closed without a close frame (gorilla's `Close`; the client sees 1006);
* `stall(s)`: every socket goes silent with its TCP connection open, as a hung server or proxy;
* `restart(s)`: every socket dropped, and for `s` seconds every request answered 503 (a load balancer
  whose backend is restarting);
* `expire()`: every Steve watch ended with `resource.stop`, the socket kept (watch expiry,
  `CATTLE_WATCH_TIMEOUT_SECONDS`); `expire(then="too-old")` answers the next resume from a revision with
  `resource.start`, `resource.error` "too old", `resource.stop` (the answer when etcd compacted the revision or
  the SQL cache's ring no longer holds it; the text and frames are the profile's); `expire(then="start-stop")` answers the next watch with start then stop;
* a slow reader: each socket's resource events go through a 100-event buffer like Rancher's broadcaster
  channel; when it is full Norman drops the socket and Steve stops the client's watches.

Sources: rancher/norman `pkg/subscribe` (frames, pings, the slow-consumer drop), rancher/apiserver
`pkg/subscribe` (watch keys, start/error/stop), rancher/steve `pkg/stores/proxy` (watch expiry, "too old").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.http11 import Request, Response

from .._wsserver import CredentialScrubbingLogger, Outbox, TrackedConnection, close_server, http_response, is_upgrade
from ..protocol import RESOURCE_EVENTS, steve
from ..simulator.profiles import LATEST, RancherProfile
from ._checks import Observation, ObservationKind

_FORWARDED = ("Authorization", "Cookie")


@dataclass(eq=False)
class _Link:
    n: int
    dialect: str
    down: ServerConnection
    up: ClientConnection
    outbox: Outbox
    active: dict[str, dict[str, str]] = field(default_factory=dict)
    swallow: set[str] = field(default_factory=set)
    stalled: bool = False
    overflowed: bool = False


class FaultProxy:
    """Forward to `upstream` (an http:// base URL on loopback), observe the client, inject faults on demand.

    `observations` grows with what the client does (bounded by `max_observations`, the oldest kept);
    `secrets` are the credential's strings, looked for in request URLs and never stored. `profile` is the Rancher
    release whose frames the proxy's own answers (start, error, stop) follow (`simulator.profiles`).
    """

    def __init__(
        self,
        upstream: str,
        *,
        secrets: Sequence[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        capacity: int = 100,
        send_buffer: int = 32 * 1024,
        max_observations: int = 200_000,
        profile: RancherProfile = LATEST,
    ) -> None:
        self.profile = profile
        self.upstream = upstream.rstrip("/")
        self._ws_upstream = "ws" + self.upstream[4:] if self.upstream.startswith("http") else self.upstream
        self._secrets = tuple(s for s in secrets if len(s) >= 8)
        self.host, self.port, self.capacity = host, port, capacity
        self.send_buffer = send_buffer  # the kernel's send buffer per client socket (SO_SNDBUF), so bursts tell
        self.observations: list[Observation] = []
        self._max = max_observations
        self._t0 = time.monotonic()
        self._links: set[_Link] = set()
        self._pending: dict[ServerConnection, ClientConnection] = {}
        self._known: set[str] = set()  # revisions the client received (events and REST lists)
        self._down = False
        self._armed: Literal["too-old", "start-stop"] | None = None
        self._n = 0
        self._server: Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._http = httpx.AsyncClient(base_url=self.upstream, trust_env=False, timeout=10.0)
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            create_connection=TrackedConnection,
            max_size=None,
            ping_interval=None,
            write_limit=4096,  # gorilla's default write buffer (Upgrader.WriteBufferSize)
            logger=CredentialScrubbingLogger(logging.getLogger("rancherlab.clientcheck")),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._t0 = time.monotonic()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await close_server(self._server)
        for up in [*self._pending.values(), *(link.up for link in self._links)]:
            await _close(up)
        if self._http is not None:
            await self._http.aclose()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connected(self) -> int:
        """How many client sockets are open now."""
        return len(self._links)

    @property
    def dialect(self) -> str | None:
        """The API of the client's first socket (None before it connected)."""
        for o in self.observations:
            if o.kind == "connected":
                return str(o.detail["dialect"])
        return None

    def note(self, kind: ObservationKind, conn: int = 0, **detail: Any) -> None:
        if len(self.observations) >= self._max:
            del self.observations[: self._max // 10]
        self.observations.append(Observation(round(time.monotonic() - self._t0, 3), kind, conn, detail))

    # --- faults -----------------------------------------------------------------------------------
    def drop(self) -> None:
        self.note("fault", name="drop")
        for link in list(self._links):
            link.outbox.abort()

    async def stall(self, seconds: float) -> None:
        self.note("fault", name="stall", seconds=seconds)
        stalled = list(self._links)
        for link in stalled:
            link.stalled = True
            link.outbox.stall()
        await asyncio.sleep(seconds)
        for link in stalled:
            if link in self._links:
                self.note("stall_unnoticed", link.n)
                link.outbox.abort()

    async def restart(self, down: float) -> None:
        self.note("fault", name="restart", down=down)
        self._down = True
        for link in list(self._links):
            link.outbox.abort()
        try:
            await asyncio.sleep(down)
        finally:
            self._down = False

    async def expire(self, then: Literal["too-old", "start-stop"] | None = None) -> list[str]:
        """End every active Steve watch with `resource.stop`; arm an answer for the next watch start."""
        self._armed = then
        stopped: list[tuple[int, str]] = []
        for link in list(self._links):
            if link.dialect == "steve":
                stopped += [(link.n, key) for key in await self._stop_watches(link)]
        self.note("fault", name="expire", then=then, stopped=stopped)
        return [key for _, key in stopped]

    def burst_noted(self, events: int) -> None:
        self.note("fault", name="burst", events=events)

    async def _stop_watches(self, link: _Link) -> list[str]:
        keys = list(link.active)
        for key, echo in list(link.active.items()):
            link.swallow.add(key)
            with contextlib.suppress(ConnectionClosed):
                await link.up.send(orjson.dumps({**_fields(echo), "stop": True}).decode())
            link.outbox.push(steve.stop_event(echo))
        link.active.clear()
        return keys

    # --- HTTP -------------------------------------------------------------------------------------
    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path
        self._look_for_credential(path)
        upgrade = is_upgrade(request.headers)
        if self._down:
            if upgrade:
                self.note("attempt", path=_shown(path), refused=True)
            return http_response(503, "no healthy upstream\n", content_type="text/plain; charset=utf-8")
        headers = {k: request.headers[k] for k in _FORWARDED if k in request.headers}
        if upgrade:
            self.note("attempt", path=_shown(path), refused=False)
            try:
                up = await connect(
                    self._ws_upstream + path,
                    additional_headers=headers,
                    open_timeout=10,
                    max_size=None,
                    ping_interval=None,
                )
            except InvalidStatus as exc:
                r = exc.response
                return Response(r.status_code, r.reason_phrase, Headers(r.headers), r.body)
            except (OSError, TimeoutError, InvalidHandshake):
                return http_response(502, "upstream unavailable\n", content_type="text/plain; charset=utf-8")
            self._pending[connection] = up
            return None
        assert self._http is not None
        try:
            r = await self._http.get(path, headers=headers)
        except httpx.HTTPError:
            return http_response(502, "upstream unavailable\n", content_type="text/plain; charset=utf-8")
        revision = None
        if r.headers.get("content-type", "").startswith("application/json"):
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(r.content)
                if isinstance(body, dict) and isinstance(body.get("revision"), str):
                    revision = body["revision"]
                    self._known.add(revision)
        self.note("rest", path=_shown(path), status=r.status_code, revision=revision)
        return http_response(r.status_code, r.content, content_type=r.headers.get("content-type", "application/json"))

    def _look_for_credential(self, path: str) -> None:
        parts = urlsplit(path)
        for where, text in (("path", unquote(parts.path)), ("query", unquote(parts.query))):
            if any(s in text for s in self._secrets):
                self.note("credential_in_url", where=where)

    # --- sockets ----------------------------------------------------------------------------------
    async def _handler(self, connection: ServerConnection) -> None:
        up = self._pending.pop(connection)
        path = urlsplit(connection.request.path if connection.request else "").path
        dialect = "steve" if path.endswith("/v1/subscribe") else "norman"
        self._n += 1
        sock = connection.transport.get_extra_info("socket")
        if sock is not None and self.send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        link = _Link(self._n, dialect, connection, up, Outbox(connection, capacity=self.capacity))
        self._links.add(link)
        self.note("connected", link.n, dialect=dialect, path=path)
        pump = asyncio.get_running_loop().create_task(self._pump(link))
        try:
            async for message in connection:
                await self._from_client(link, message)
        except ConnectionClosed:
            pass
        finally:
            self._links.discard(link)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            await _close(up)
            await link.outbox.close()
            self.note("closed", link.n)

    async def _pump(self, link: _Link) -> None:
        """Upstream → client, through the bounded buffer; an upstream that ends drops the client (1006)."""
        with contextlib.suppress(ConnectionClosed):
            async for text in link.up:
                if link.stalled:
                    continue
                if isinstance(text, bytes):
                    text = text.decode("utf-8", "replace")
                name, key, revision = _peek(text)
                if link.dialect == "steve" and name == "resource.stop" and key is not None:
                    if key in link.swallow:
                        link.swallow.discard(key)
                        continue
                    link.active.pop(key, None)
                if revision:
                    self._known.add(revision)
                if name not in RESOURCE_EVENTS:
                    link.outbox.push(text)
                elif not link.outbox.offer(text):
                    await self._overflow(link)
                # let the writer run between frames, as Rancher's watch and writer goroutines run side by side:
                # the buffer then fills only while the client's socket takes nothing more
                await asyncio.sleep(0)
        link.outbox.abort()

    async def _overflow(self, link: _Link) -> None:
        if not link.overflowed:
            link.overflowed = True
            self.note("overflow", link.n)
        if link.dialect == "norman":
            link.outbox.abort()  # norman's broadcaster: "Slow consumer, drop"
        else:
            await self._stop_watches(link)

    async def _from_client(self, link: _Link, message: str | bytes) -> None:
        if link.dialect == "norman":
            return  # norman's reader discards what the client sends
        try:
            sub = steve.decode_subscribe(message)
        except ValueError:
            await link.up.send(message)
            return
        key, echo = sub.key, sub.echo()
        if sub.stop:
            self.note("unsubscribe", link.n, key=key)
            link.active.pop(key, None)
            await link.up.send(message)
            return
        revision = sub.resource_version or None
        self.note(
            "subscribe",
            link.n,
            key=key,
            type=sub.resource_type,
            revision=revision,
            known=revision in self._known if revision else False,
            duplicate=key in link.active,
        )
        if self._armed == "too-old" and revision:
            self._armed = None
            current = max((r for r in self._known if r.isdigit()), key=int, default=revision)
            link.outbox.push(self.profile.start_event(echo))
            link.outbox.push(self.profile.error_event(self.profile.too_old(revision, current), echo))
            link.outbox.push(steve.stop_event(echo))
            self.note("answered", link.n, how="too-old", key=key, type=sub.resource_type, revision=revision)
            return
        if self._armed == "start-stop":
            self._armed = None
            link.outbox.push(self.profile.start_event(echo))
            link.outbox.push(steve.stop_event(echo))
            self.note("answered", link.n, how="start-stop", key=key, type=sub.resource_type)
            return
        link.active[key] = echo
        await link.up.send(message)


async def _close(up: ClientConnection) -> None:
    """Close an upstream socket: the closing handshake if it answers soon, else the TCP connection at once."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(up.close(), 1)
    if up.transport is not None and not up.transport.is_closing():
        up.transport.abort()


def _fields(echo: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in echo.items() if v}


def _peek(text: str) -> tuple[str | None, str | None, str | None]:
    """A frame's name, Steve watch key (when echoed) and revision, without trusting it to be well formed."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(doc, dict):
        return None, None, None
    name = doc.get("name") if isinstance(doc.get("name"), str) else None
    key = steve.subscription_key(doc) if doc.get("resourceType") else None
    rev = doc.get("revision")
    return name, key, rev if isinstance(rev, str) and rev else None


def _shown(path: str) -> str:
    """A request path without its query string (which a careless client may fill with a credential)."""
    return urlsplit(path).path
