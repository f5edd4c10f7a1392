"""The reliability battery's harness: a stream run on a debug-mode loop that fails on slow callbacks, its memory
measured, and the small servers the battery puts between the stream and the simulator.

* `run_battery` runs a `Stream` on a fresh loop with asyncio's debug mode on (`slow_callback_duration` 0.1 s), so a
  loop that spins without awaiting shows as an "Executing ... took" warning whatever input made it spin; it traces
  memory (tracemalloc peak) and returns everything the checks need.
* `Relay` is a WebSocket-level proxy in front of the simulator (REST forwarded too) that can add frames of its
  own to every socket (hostile frames), close every socket cleanly (1000) and answer upgrades with a page of its
  own instead of 101 (a login page).
* `IdleCutter` is a TCP proxy that cuts a connection after N seconds without a byte in either direction, as load
  balancers do (an AWS ELB's default idle timeout is 60 s, many ingresses' 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from rancherlab._loop import ServerHandle
from rancherlab._wsserver import TrackedConnection, close_server, http_response, is_upgrade
from rancherlab.protocol.event import CONNECTED, DISCONNECTED, Event
from rancherlab.stream import Stream

SLOW_CALLBACK = 0.1  # seconds: asyncio debug mode warns about any callback or task step that takes longer


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class LoopWatch:
    """What a run's event loops did: asyncio's slow-callback warnings, and for each, whether the loop's thread was
    working (CPU time) or waiting (preempted by the OS or another thread holding the GIL, on a busy machine)."""

    warnings: list[str] = field(default_factory=list)  # every "Executing ... took" warning
    busy: list[str] = field(default_factory=list)  # the ones whose callback itself ran that long (CPU time)
    max_cpu: float = 0.0  # the longest CPU time of any single callback on a debug-mode loop, in seconds

    @property
    def slow(self) -> list[str]:
        """The callbacks that blocked their loop: each ran past the limit on its thread's CPU clock."""
        return self.busy


@contextlib.contextmanager
def slow_callbacks() -> Iterator[LoopWatch]:
    """Collect asyncio's slow-callback warnings ("Executing <...> took 0.123 seconds") while the block runs.

    asyncio judges by wall-clock time, which on a loaded machine also counts the time the loop's thread was not
    running at all. Each callback's CPU time on its thread is measured too (`time.thread_time`), so a warning
    for a callback that itself ran past the limit fails, and one for a thread that was only descheduled is kept
    in `warnings` but is not `slow`.
    """
    watch = LoopWatch()
    handler = _Records()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    original = asyncio.events.Handle._run

    def timed_run(self: asyncio.events.Handle) -> None:
        loop: asyncio.AbstractEventLoop = self._loop  # type: ignore[attr-defined]
        if not loop.get_debug():
            return original(self)
        cpu = time.thread_time()
        try:
            return original(self)
        finally:
            used = time.thread_time() - cpu
            watch.max_cpu = max(watch.max_cpu, used)
            if used >= loop.slow_callback_duration:
                watch.busy.append(asyncio.base_events._format_handle(self))  # type: ignore[attr-defined]

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    try:
        yield watch
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
        logger.removeHandler(handler)
        watch.warnings = [
            r.getMessage() for r in handler.records if r.msg.startswith("Executing") and " took " in r.msg
        ]


@dataclass
class BatteryRun:
    events: list[Event]
    result: Any
    error: BaseException | None  # the stream's final error (None: it went on until closed)
    peak_bytes: int  # tracemalloc peak over the run (every thread: stream, simulator, proxies)
    loop: LoopWatch  # the stream's loop: slow callbacks, the longest callback

    @property
    def slow(self) -> list[str]:
        return self.loop.slow

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 1e6


def run_battery(stream: Stream, scenario: Callable[[list[Event]], Awaitable[Any]]) -> BatteryRun:
    """Run `stream` on a fresh debug-mode loop while `scenario(events)` runs, then close it.

    The scenario must not block the loop (drive the simulator with `asyncio.to_thread`): everything on this loop
    is held to the 0.1 s slow-callback limit.
    """

    async def main() -> tuple[list[Event], Any, BaseException | None]:
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = SLOW_CALLBACK
        events: list[Event] = []
        error: list[BaseException] = []

        async def consume() -> None:
            try:
                async for event in stream:
                    events.append(event)
            except Exception as exc:  # noqa: BLE001 - the stream's final error, whatever it is, is judged by the test
                error.append(exc)

        task = loop.create_task(consume())
        try:
            result = await scenario(events)
        finally:
            await stream.aclose()
            await asyncio.gather(task, return_exceptions=True)
        return events, result, error[0] if error else None

    gc.collect()
    gc.freeze()  # what exists now (imports, the simulator's world) is not walked by every collection of the run
    tracemalloc.start()
    try:
        with slow_callbacks() as watch:
            events, result, error = asyncio.run(main(), debug=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.unfreeze()
    return BatteryRun(events, result, error, peak, watch)


async def wait_for(events: list[Event], ok: Callable[[list[Event]], bool], timeout: float = 8.0) -> None:
    """Wait until `ok(events)` holds; fail the test with what arrived if it does not in time."""
    deadline = time.monotonic() + timeout
    while not ok(events):
        if time.monotonic() > deadline:
            names = [(e.kind, e.name) for e in events[-15:]]
            raise AssertionError(f"condition not met in {timeout} s; last events: {names}")
        await asyncio.sleep(0.02)


def count(events: list[Event], name: str) -> int:
    return sum(1 for e in events if e.kind == "marker" and e.name == name)


def connections(n: int) -> Callable[[list[Event]], bool]:
    """At least `n` connections opened, the last one with a frame received after its `connected` marker."""

    def ok(events: list[Event]) -> bool:
        if count(events, CONNECTED) < n:
            return False
        last = max(i for i, e in enumerate(events) if e.kind == "marker" and e.name == CONNECTED)
        return any(e.kind == "frame" for e in events[last:])

    return ok


def framing_errors(events: list[Event]) -> list[str]:
    """Every connection framed by connected/disconnected, alternating, with frames only inside one."""
    problems: list[str] = []
    open_conn: int | None = None
    for e in events:
        if e.kind == "marker" and e.name == CONNECTED:
            if open_conn is not None:
                problems.append(f"#{e.seq}: connected while c{open_conn} is open")
            open_conn = e.conn
        elif e.kind == "marker" and e.name == DISCONNECTED:
            if open_conn != e.conn:
                problems.append(f"#{e.seq}: disconnected c{e.conn} while c{open_conn} is open")
            open_conn = None
        elif e.kind == "frame" and open_conn != e.conn:
            problems.append(f"#{e.seq}: frame on c{e.conn} outside its connection")
    return problems


# --- a WebSocket relay in front of the simulator -------------------------------------------------------------


class _RelayServer:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = 0
        self.page: Response | None = None  # when set, every upgrade is answered with this instead of 101
        self._server: Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._pending: dict[ServerConnection, ClientConnection] = {}
        self.clients: set[ServerConnection] = set()
        self.upgrades = 0  # upgrade requests seen

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.upstream, trust_env=False, timeout=10.0)
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            self.port,
            process_request=self._process_request,
            create_connection=TrackedConnection,
            max_size=None,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            await close_server(self._server)
        for up in self._pending.values():
            await up.close()
        if self._http is not None:
            await self._http.aclose()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = {k: request.headers[k] for k in ("Authorization", "Cookie") if k in request.headers}
        if is_upgrade(request.headers):
            self.upgrades += 1
            if self.page is not None:
                return self.page
            try:
                up = await connect("ws" + self.upstream[4:] + request.path, additional_headers=headers, max_size=None)
            except InvalidStatus as exc:
                r = exc.response
                return Response(r.status_code, r.reason_phrase, Headers(r.headers), r.body)
            except OSError:
                return http_response(502, "upstream unavailable\n", content_type="text/plain")
            self._pending[connection] = up
            return None
        assert self._http is not None
        answer = await self._http.get(request.path, headers=headers)
        kind = answer.headers.get("content-type", "application/json")
        return http_response(answer.status_code, answer.content, content_type=kind)

    async def _handler(self, connection: ServerConnection) -> None:
        up = self._pending.pop(connection)
        self.clients.add(connection)

        async def pump() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in up:
                    await connection.send(message)
            if connection.transport is not None:
                connection.transport.abort()  # the upstream went away: drop the client like a proxy (1006)

        task = asyncio.get_running_loop().create_task(pump())
        try:
            async for message in connection:
                await up.send(message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(connection)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await up.close()

    async def inject(self, message: str | bytes) -> int:
        """Send `message` to every client socket; returns how many got it."""
        sent = 0
        for conn in list(self.clients):
            with contextlib.suppress(ConnectionClosed):
                await conn.send(message)
                sent += 1
        return sent

    async def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.clients):
            await conn.close(code, reason)

    def drop_all(self) -> None:
        for conn in list(self.clients):
            if conn.transport is not None:
                conn.transport.abort()


class Relay(ServerHandle[_RelayServer]):
    """A WebSocket proxy in front of `upstream` (the simulator), on a loop of its own; see the module docstring."""

    what = "relay"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__("battery-relay")

    def _make(self) -> _RelayServer:
        return _RelayServer(self.upstream)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._running.port}"

    @property
    def upgrades(self) -> int:
        return self._running.upgrades

    async def inject(self, message: str | bytes) -> int:
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._running.inject(message), self._runner.loop)
        )

    async def close_all(self, code: int = 1000, reason: str = "") -> None:
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._running.close_all(code, reason), self._runner.loop)
        )

    async def answer_upgrades_with(self, page: Response | None, *, drop: bool = True) -> None:
        """From now on answer every upgrade with `page` (None: forward again); `drop` the sockets open now."""
        server = self._running

        def switch() -> None:
            server.page = page
            if drop:
                server.drop_all()

        await asyncio.to_thread(self._runner.run, switch)


def login_page() -> Response:
    """What an authenticating proxy (an SSO gateway) answers a request without its session cookie."""
    body = (
        b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form action='/oauth2/sign_in' method='post'>"
        b"<input name='username'><input type='password' name='password'><button>Sign in</button></form></body></html>"
    )
    headers = Headers({"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body)), "Server": "sso"})
    headers["Connection"] = "close"
    return Response(200, "OK", headers, body)


# --- a TCP proxy that cuts idle connections ------------------------------------------------------------------


class _IdleCutterServer:
    def __init__(self, upstream_port: int, idle: float) -> None:
        self.upstream_port = upstream_port
        self.idle = idle
        self.port = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)
            return
        last = [time.monotonic()]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    last[0] = time.monotonic()
                    dst.write(data)
                    await dst.drain()

        pipes = [asyncio.ensure_future(pipe(reader, up_writer)), asyncio.ensure_future(pipe(up_reader, writer))]
        try:
            while not any(p.done() for p in pipes):
                await asyncio.sleep(min(0.05, self.idle / 4))
                if time.monotonic() - last[0] >= self.idle:
                    self.cuts += 1
                    break
        finally:
            for p in pipes:
                p.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            writer.transport.abort()  # a load balancer's idle cut: a reset, no close frame (1006)
            up_writer.transport.abort()
            self._tasks.discard(task)


class IdleCutter(ServerHandle[_IdleCutterServer]):
    """A TCP proxy to `127.0.0.1:upstream_port` that cuts a connection idle (no byte either way) for `idle` s."""

    what = "idle-cutting proxy"

    def __init__(self, upstream_port: int, idle: float) -> None:
        self.upstream_port, self.idle = upstream_port, idle
        super().__init__("battery-idle-cutter")

    def _make(self) -> _IdleCutterServer:
        return _IdleCutterServer(self.upstream_port, self.idle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._running.port}"

    @property
    def cuts(self) -> int:
        return self._running.cuts
