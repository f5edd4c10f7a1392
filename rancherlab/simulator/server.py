"""The simulator's websockets server: Rancher's subscribe endpoints, its REST, its auth, and faults on demand.

Plain HTTP is answered in websockets' `process_request` hook, so one server and no web framework
serves both the upgrades and the REST calls, in the order Rancher's handler chain checks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import ssl
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._wsserver import MAX_CLIENT_MESSAGE, CredentialScrubbingLogger, Outbox, every, http_response, is_upgrade
from ..errors import UsageError
from ..protocol import auth, norman, steve
from ._norman import NormanSession, SharedWatches
from ._steve import SteveConfig, SteveSession, Store
from .formats import NormanScopeKind, norman_schemas
from .profiles import LATEST, RancherProfile
from .rest import handle_rest
from .world import Change, World

log = logging.getLogger("rancherlab.simulator")

_NORMAN_PATH = re.compile(r"^/v3(?:/(clusters?|projects?)/([^/]+))?/subscribe$")
_STEVE_PATH = re.compile(r"^(?:/k8s/clusters/([^/]+))?/v1/subscribe$")
_MOST_PER_TICK = 50  # world changes in one tick of the churn, whatever the rate (one step takes ~0.5 ms)
_CLUSTER_PREFIX = re.compile(r"^/k8s/clusters/([^/]+)(/.*)$")


@dataclass
class SimulatorConfig:
    """Every interval and rate is a knob, so tests run in seconds instead of Rancher's minutes."""

    token: str = field(repr=False)  # a credential: never in a repr (a notebook cell that shows it saves it)
    host: str = "127.0.0.1"
    port: int = 0
    rate: float = 5.0  # world changes per second; 0 = only when `step()` is called; may change live
    norman_ping: float = norman.PING_INTERVAL
    steve_ping: float = steve.PING_INTERVAL
    steve_store: Store = "sql"
    steve_retain: int = 1000
    watch_timeout: float | None = None  # Norman shared watch end; Steve proxy-store watch expiry
    drop_every: float | None = None  # abort every socket (1006) this often
    stall_after: float | None = None  # each new socket goes silent this long after connecting
    buffer: int = 100  # per-subscriber event buffer before the slow-consumer drop
    forbid: tuple[str, ...] = ()  # types the caller may see but not watch (Norman or Steve schema ids)
    count_interval: float = 5.0  # Steve's `count` resource: merged updates at most this often
    profile: RancherProfile = LATEST  # the Rancher release whose Steve frames to send (`profiles.py`)
    ssl_context: ssl.SSLContext | None = None
    history_limit: int | None = 10_000  # world changes kept (Steve resumes, `history()`); None keeps all

    def __post_init__(self) -> None:
        positive = ("norman_ping", "steve_ping", "count_interval")
        for name in positive:
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be a positive number of seconds")
        for name in ("watch_timeout", "drop_every", "stall_after"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise UsageError(f"{name} must be a positive number of seconds, or None (or 0) for never")
        if not self.rate >= 0:
            raise UsageError("rate must be zero (change only on step()) or a positive number of changes a second")
        if self.buffer < 1 or self.steve_retain < 1:
            raise UsageError("buffer and steve_retain must be positive numbers of events")
        if self.history_limit is not None and self.history_limit < 1:
            raise UsageError("history_limit must be a positive number of changes, or None to keep every change")


@dataclass(eq=False)
class _Conn:
    outbox: Outbox
    session: NormanSession | SteveSession
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Route:
    dialect: str
    base_url: str
    scope_kind: NormanScopeKind | None = None
    scope_id: str | None = None
    schemas: frozenset[str] = frozenset()
    cluster: str = "local"
    prefix: str = ""
    unknown_cluster: bool = False


class SimulatorServer:
    """Async core of the simulator; `Simulator` runs it on a background thread."""

    def __init__(self, world: World, config: SimulatorConfig) -> None:
        self.world = world
        self.config = config
        self._server: Server | None = None
        # filled before websockets checks the rest of the handshake (a request without Sec-WebSocket-Key never
        # reaches the handler that takes its route out): weak, so a refused handshake leaves nothing behind
        self._routes: weakref.WeakKeyDictionary[ServerConnection, _Route] = weakref.WeakKeyDictionary()
        self._conns: set[_Conn] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._watches = SharedWatches(config.watch_timeout, self._drop_session)
        self._steve = SteveConfig(
            config.steve_store,
            config.steve_retain,
            config.watch_timeout,
            world.revision,
            frozenset(config.forbid),
            config.count_interval,
            config.profile,
        )
        if config.history_limit is not None:
            world.history_limit = config.history_limit  # a server runs for hours: its world stays bounded
        self._unlisten = world.add_listener(self._on_change)
        self.port = config.port

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await serve(
            self._handler,
            self.config.host,
            self.port,
            process_request=self._process_request,
            ping_interval=None,  # Rancher sends application pings only, never protocol-level ones
            ssl=self.config.ssl_context,
            max_size=MAX_CLIENT_MESSAGE,
            server_header=None,
            logger=CredentialScrubbingLogger(log),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if not self._tasks:
            self._tasks.append(asyncio.get_running_loop().create_task(self._churn()))  # idles while rate is 0
            if self.config.drop_every:
                self._tasks.append(every(self.config.drop_every, self.drop_now))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        await self._close_listener()
        self._unlisten()

    async def restart(self, down: float = 1.0) -> None:
        """The port goes away (connections refused) for `down` seconds, then comes back."""
        await self._close_listener()
        await asyncio.sleep(down)
        await self.start()

    async def _close_listener(self) -> None:
        self.drop_now()
        if self._server is not None:
            self._server.close(close_connections=False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        self._watches.clear()

    @property
    def url(self) -> str:
        scheme = "https" if self.config.ssl_context else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    # --- faults -------------------------------------------------------------------------------
    def drop_now(self) -> None:
        """Close every socket's TCP connection without a close frame: clients see 1006."""
        for conn in list(self._conns):
            conn.outbox.abort()

    def stall(self) -> None:
        """Every open socket stays open and goes silent: no events, no pings."""
        for conn in self._conns:
            conn.outbox.stall()

    def _drop_session(self, session: NormanSession) -> None:
        session.outbox.abort()

    # --- world --------------------------------------------------------------------------------
    def step(self, n: int = 1) -> list[Change]:
        changes: list[Change] = []
        for _ in range(n):
            changes.extend(self.world.step())
        return changes

    def _on_change(self, change: Change) -> None:
        for conn in list(self._conns):
            conn.session.deliver(change)

    async def _churn(self) -> None:
        """Step the world at `config.rate` changes a second, read each tick so it can be changed (0 pauses).

        A tick never catches up on more than one tick's worth: a loop that fell behind (a busy machine, a rate it
        cannot reach) would otherwise step in ever larger synchronous bursts that starve the sockets and overflow
        every reader's buffer. The rate is an upper bound, as Rancher's own churn is not a schedule.
        """
        loop = asyncio.get_running_loop()
        start, done, rate = loop.time(), 0, self.config.rate
        while True:
            if self.config.rate != rate:  # changed at run time: a new schedule from now
                start, done, rate = loop.time(), 0, self.config.rate
            tick = max(0.001, min(0.05, 1 / rate)) if rate > 0 else 0.05
            due = int((loop.time() - start) * rate) - done if rate > 0 else 0
            most = min(_MOST_PER_TICK, max(1, math.ceil(rate * tick)))  # a tick's work stays short
            if due > most:  # behind: skip what cannot be made up
                done += due - most
                due = most
            if due > 0:
                self.step(due)
                done += due
            await asyncio.sleep(tick)

    # --- HTTP, in the order Rancher's handler chain checks things -------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        host = headers.get("Host", "")
        parts = urlsplit(request.path)
        path, query = unquote(parts.path), parse_qs(parts.query, keep_blank_values=True)
        if auth.browser_origin_rejected(headers, host):
            return http_response(403, auth.ORIGIN_NOT_ALLOWED_BODY)
        token = auth.token_from_request(headers.get("Authorization"), headers.get("Cookie"))
        if token != self.config.token:
            return http_response(401, auth.UNAUTHORIZED_BODY, extra={"X-API-Cattle-Auth": "false"})
        base_url = f"{'https' if self.config.ssl_context else 'http'}://{host}"
        route = self._route(path, query, base_url)
        if route is None:
            return self._rest(path, query, base_url)
        if isinstance(route, Response):
            return route
        if auth.gorilla_origin_rejected(headers.get("Origin"), host):
            return http_response(403, auth.FORBIDDEN_BODY, content_type="text/plain; charset=utf-8")
        if not is_upgrade(headers):
            return http_response(400, "Bad Request\n", content_type="text/plain; charset=utf-8")
        if route.dialect == "norman":
            connection.protocol.available_extensions = []  # gorilla's Upgrader{} offers no compression
        self._routes[connection] = route
        return None

    def _route(self, path: str, query: dict[str, list[str]], base_url: str) -> _Route | Response | None:
        m = _NORMAN_PATH.match(path)
        if m:
            return self._norman_route(m.group(1), m.group(2), query, base_url)
        m = _STEVE_PATH.match(path)
        if m:
            cluster = m.group(1) or "local"
            if cluster not in self.world.clusters():
                return http_response(401, "")  # rancher's cluster proxy: the user cannot get that cluster
            prefix = f"/k8s/clusters/{cluster}" if cluster != "local" else ""
            return _Route("steve", base_url, cluster=cluster, prefix=prefix)
        return None

    def _norman_route(
        self, kind: str | None, ident: str | None, query: dict[str, list[str]], base_url: str
    ) -> _Route | Response:
        scope_kind: NormanScopeKind = (
            "global" if kind is None else ("cluster" if kind.startswith("cluster") else "project")
        )
        # RBAC: a type the caller may not watch is not among the caller's schemas at all
        available = [t for t in norman_schemas(scope_kind) if t not in self.config.forbid]
        wanted = query.get("resourceTypes")
        schemas = frozenset(available if wanted is None else [t for t in wanted if t in available])
        if not schemas:
            return http_response(404, norman.NO_TYPES_BODY)
        cluster = "local" if ident is None else ident.split(":", 1)[0]
        return _Route(
            "norman",
            base_url,
            scope_kind,
            ident,
            schemas,
            cluster,
            unknown_cluster=cluster not in self.world.clusters(),
        )

    def _rest(self, path: str, query: dict[str, list[str]], base_url: str) -> Response:
        m = _CLUSTER_PREFIX.match(path)
        if m and m.group(1) not in self.world.clusters():
            return http_response(401, "")
        answer = handle_rest(self.world, path, query, base_url, frozenset(self.config.forbid))
        if answer is None:
            return http_response(404, '{"type":"error","status":"404","message":"not found"}\n')
        status, body = answer
        return http_response(status, json.dumps(body, separators=(",", ":")) + "\n")

    # --- upgraded sockets ---------------------------------------------------------------------
    async def _handler(self, connection: ServerConnection) -> None:
        route = self._routes.pop(connection)
        if route.unknown_cluster:
            # Store.Watch fails with ClusterUnavailable right after the 101; gorilla's Close sends no close frame.
            connection.transport.abort()
            return
        outbox = Outbox(connection, capacity=self.config.buffer)
        if route.dialect == "norman":
            assert route.scope_kind is not None
            session: NormanSession | SteveSession = NormanSession(
                outbox, self.world, route.scope_kind, route.scope_id, route.schemas, route.base_url, self._drop_session
            )
            ping = every(self.config.norman_ping, lambda: outbox.push(norman.PING))
        else:
            session = SteveSession(outbox, self.world, route.cluster, route.base_url, route.prefix, self._steve)
            version = self.world.server_version
            ping = every(self.config.steve_ping, lambda: outbox.push(self.config.profile.ping(version)))
        conn = _Conn(outbox, session, [ping])
        if isinstance(session, NormanSession):
            started = self._watches.join(session, route.cluster)
            session.replay(started)
        if self.config.stall_after:
            conn.tasks.append(asyncio.get_running_loop().create_task(_later(self.config.stall_after, outbox.stall)))
        self._conns.add(conn)
        try:
            async for message in connection:
                if isinstance(session, SteveSession):
                    session.receive(message)
                    await outbox.settle()  # a client that never reads stops being read
                # Norman's reader loop discards whatever the client sends.
        except ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)
            if isinstance(session, NormanSession):
                self._watches.leave(session)
            else:
                session.close()
            for task in conn.tasks:
                task.cancel()
            await outbox.close()


async def _later(delay: float, fn: Any) -> None:
    await asyncio.sleep(delay)
    fn()
