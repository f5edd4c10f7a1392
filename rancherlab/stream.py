"""The live stream: one subscribe socket kept alive, with a stream of `Event`s that never hides a gap.

Guarantees, for both dialects and both Steve stores:

* the stream starts with the current objects (`kind="snapshot"`, from REST), so it does not depend on
  the server's replay, which Norman gives only to the first subscriber and the SQL-cache Steve never;
* a connection that goes quiet longer than the liveness timeout (Norman 15 s = 3 pings, Steve 35 s =
  ping + grace) is closed and replaced; every connection is framed by `connected`/`disconnected`
  markers, so silence and loss can always be told apart;
* after a gap the state is made whole again: Steve resumes each watch from the highest revision seen
  (and re-lists on "too old"), Norman re-lists and emits the difference as `kind="resync"` events
  between `resync.started` and `resync.finished`. Replaying the stream rebuilds the server's state;
* errors that retrying cannot fix (401, 403, unknown type or cluster, TLS) are raised once, typed;
* secrets are redacted here, where events enter rancherlab, so no consumer (events list, sinks,
  DataFrames, recordings) ever sees one: every event is redacted exactly once before it is queued, and
  snapshot/resync objects are redacted as listed, so the state they are compared with holds
  placeholders too. Most events take the redactor's fast path (a text scan, about the cost of a parse).

This module is the driver: the reconnect loop, the reader and its liveness watchdog, REST listings, and the
execution of what the protocol core decides. The rules themselves live in `protocol`: which object an event is
about, removals and the snapshot/resync difference in `protocol.objects` (`ObjectMirror`), what to do about each
Steve watch message in `protocol.watch` (`WatchMachine`). What a refused handshake means is in `_handshake`.

The receive loop never waits on the consumer, and memory never grows with the backlog: frames go
through a `Spool` that keeps up to half of `backlog_bytes` in memory and the rest on disk, encrypted
(see `rancherlab._spool`); processed events through a queue the processing loop waits on when full.
So that a crash loses little, the reader stays at most `max_lag` seconds ahead of processing.

Event times: `t` (seconds since the stream started) and `ts` are stamped when an event is handed to
the consumer, so `t` grows with `seq`. Frames that arrive during a snapshot or resync are held until it
is emitted, at most one REST round trip.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from ._handshake import CONNECT_ERRORS, Handshake, Retry
from ._spool import EventQueue, Spool, queue_limits
from .credentials import Credentials, Server, resolve_server
from .errors import (
    TOKEN_HELP,
    ClusterNotFound,
    ConnectGaveUpError,
    CredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    ScopeError,
    ServerUnavailableError,
    UnknownTypeError,
    UsageError,
    type_list,
)
from .protocol.event import CONNECTED, DEFAULT_MAX_FRAME_BYTES, DISCONNECTED, WATCH_STOPPED, Dialect, Event, marker
from .protocol.frames import SOCKET_LIMIT_FACTOR, parse_frame, parse_sent, socket_limit
from .protocol.objects import Key, ObjectMirror, listed_by_key
from .protocol.steve import Watch
from .protocol.watch import Action, Fatal, Relist, Rewatch, Stopped, WatchMachine, WatchState, retry_delay
from .redaction import Redactor
from .rest import USER_AGENT, Listing, RestClient
from .scope import Scope, resolve_scope, subscribe_url

log = logging.getLogger("rancherlab.stream")

NORMAN_LIVENESS: Final = 15.0  # three missed 5 s pings
STEVE_LIVENESS: Final = 35.0  # one 30 s ping plus grace, as the dashboard's frameTimeout


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """Every timing and policy knob, so tests can shorten them and users can tune them.

    Keepalive: websockets' own ping frames stay on (`ws_ping_interval`). Rancher's gorilla server
    answers them, they keep idle-cutting proxies busy in both directions, and they notice a half-open
    TCP connection sooner on Steve, whose application ping comes only every 30 s. Liveness itself is
    judged on Rancher's frames (`liveness`), which also catches a server that answers pings but
    stopped sending events.
    """

    snapshot: bool = True  # start with the current objects from REST
    resync: bool = True  # after a gap, re-list and emit the difference
    liveness: float | None = None  # seconds without a frame → dead; None: 15 (Norman) / 35 (Steve)
    backoff_initial: float = 1.0
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    jitter: bool = True  # full jitter: a uniform delay between 0 and the capped exponential
    give_up_after: int | None = None  # consecutive failed connection attempts; None: never give up
    too_old_backoff: float = 0.25  # the dashboard's n == 0 ? ~0 : n² × 250 ms
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    open_timeout: float = 10.0
    close_timeout: float = 1.0
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    rest_timeout: float = 10.0
    quick_close: float = 2.0  # Norman: closed this soon after the upgrade with no frame = refused
    # Backlog: what the reader received and processing has not yet taken waits in memory up to about this many
    # bytes (received frames and queued events together), beyond that in an encrypted spool file in
    # `spool_dir` (default: the temporary directory). `max_lag`: the reader stays at most this many seconds
    # ahead of processing (a crash then loses at most that much); None: it never waits, the disk takes all.
    backlog_bytes: int = 64 * 1024 * 1024
    max_lag: float | None = 0.25
    spool_dir: str | None = None

    def liveness_for(self, dialect: Dialect) -> float:
        if self.liveness is not None:
            return self.liveness
        return STEVE_LIVENESS if dialect == "steve" else NORMAN_LIVENESS

    def backoff(self, failures: int) -> float:
        """Delay before the next connection attempt after `failures` consecutive failures (0 after a good one)."""
        cap = min(self.backoff_max, self.backoff_initial * self.backoff_factor ** max(0, failures))
        return random.uniform(0, cap) if self.jitter else cap

    def retry_delay(self, n: int) -> float:
        """Delay before the n-th consecutive re-watch of one Steve watch (dashboard's back-off)."""
        return retry_delay(n, self.too_old_backoff)


@dataclass(slots=True)
class _Closed:
    code: int | None
    reason: str
    liveness: bool = False


@dataclass(slots=True)
class _End:
    error: BaseException | None = None


class _SecretFilteringLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs handshake headers at DEBUG; this keeps the credential out of every log line."""

    def __init__(self, logger: logging.Logger, secrets: Iterable[str]) -> None:
        super().__init__(logger, {})
        self._secrets = tuple(s for s in secrets if s)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        kwargs.pop("stacklevel", None)
        self.logger.log(level, "%s", text, **kwargs)


class Stream:
    """A live subscription as an async iterator of `Event`s (see the module docstring).

    Construction validates everything that can be checked offline (scope, URL, credentials) and raises
    at once; iteration connects. `aclose()` stops it. Events come out redacted by `redactor` (default:
    secrets, tokens, PEM keys and the credential in use, which is added to a given redactor too);
    `Redactor(enabled=False)` hands them on as received. While it waits between connection attempts (its
    jittered back-off, see `StreamOptions.backoff`), `next_attempt_at` is when the next one starts
    (`time.monotonic()` seconds); otherwise it is None.
    """

    def __init__(
        self,
        url: str | None = None,
        scope: str | Scope | None = None,
        *,
        types: Iterable[str] = (),
        watches: Iterable[Watch] = (),
        credentials: Credentials | str | None = None,
        cacert: str | None = None,
        insecure: bool | None = None,
        options: StreamOptions | None = None,
        env: Mapping[str, str] | None = None,
        cli_config: Any = None,
        server: Server | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.server = server or resolve_server(
            url, credentials, cacert=cacert, insecure=insecure, env=env, cli_config=cli_config
        )
        self.scope = resolve_scope(self.server.url, scope)
        self.dialect: Dialect = self.scope.dialect
        self.options = options or StreamOptions()
        names = tuple(types) or self.server.url.types
        watch_list = list(watches)
        if self.dialect == "steve":
            watch_list += [Watch(t) for t in names]
            if not watch_list:
                raise UsageError(
                    "a Steve scope needs at least one watch: types=('pod',), watches=(Watch('pod'),) or --type"
                )
            unique = {w.key: w for w in watch_list}
            self.watches: tuple[Watch, ...] = tuple(unique.values())
            self.types: tuple[str, ...] = ()
        else:
            if watch_list:
                raise ScopeError("Norman scopes (/v3) have no watches; choose resource types with types=(...)/--type")
            self.watches, self.types = (), tuple(dict.fromkeys(names))
        self.endpoint = subscribe_url(self.server.base, self.scope, self.types)
        if self.server.credentials is None:
            raise CredentialsError(f"no credential for {self.server.base}. {TOKEN_HELP}")
        secrets = self.server.credentials.secrets()
        # The credential in use is always one of the redacted strings; a given policy is kept (off stays off).
        self.redactor = redactor.derive(credentials=secrets) if redactor is not None else Redactor(credentials=secrets)
        self.server_version: str | None = None
        self.connection_attempts = 0
        # While the stream waits between connection attempts: when (time.monotonic()) the next one starts; else None.
        self.next_attempt_at: float | None = None
        self._queue: EventQueue[Event | _End] | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self._conn = 0
        self._t0 = 0.0
        self._mirror = ObjectMirror(self.dialect)
        self._snapshotted = False
        self._watch_machine = WatchMachine(
            self.watches,
            snapshot=self.options.snapshot,
            resync=self.options.resync,
            retry_unit=self.options.too_old_backoff,
        )
        self._rest: RestClient | None = None
        self._handshake: Handshake | None = None
        self._ssl: ssl.SSLContext | None = None
        self._wslog = _SecretFilteringLogger(
            logging.getLogger("rancherlab.websockets"), self.server.credentials.secrets()
        )

    def __repr__(self) -> str:
        return f"<Stream {self.scope} at {self.server.base} {self.server.credentials!r}>"

    # --- consumer side ------------------------------------------------------------------------------

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Event:
        if self._queue is None:
            self.start()
        assert self._queue is not None
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later call ends the same way
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def next_batch(self, limit: int = 1000) -> list[Event]:
        """Wait for one event, then take up to `limit` already queued ones without waiting (sinks batch)."""
        batch = [await self.__anext__()]
        assert self._queue is not None
        while len(batch) < limit and not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _End):
                self._queue.put_nowait(item)  # ends the next call
                break
            batch.append(item)
        return batch

    def prepare_tls(self) -> ssl.SSLContext | None:
        """Build the SSL context now, so an `insecure` warning shows where the caller can see it."""
        if self._ssl is None:
            self._ssl = self.server.ssl_context()
        return self._ssl

    # --- the facts a recording header needs (`source.EventSource`) -----------------------------------

    @property
    def server_base(self) -> str:
        return self.server.base

    @property
    def max_frame_bytes(self) -> int:
        return self.options.max_frame_bytes

    async def identify(self) -> str | None:
        """Rancher's version (REST `server-version` setting) into `server_version`; None when it does not say."""
        if self.server_version is None:
            try:
                async with RestClient(
                    self.server, ssl_context=self.prepare_tls(), timeout=self.options.rest_timeout
                ) as rest:
                    self.server_version = await rest.server_version()
            except RancherlabError as exc:  # the stream itself reports what is wrong, typed
                log.info("no server version from %s: %s", self.server.base, exc)
        return self.server_version

    def start(self) -> None:
        """Start receiving on the running loop (iteration starts it too)."""
        if self._queue is not None:
            return
        self._queue = EventQueue(queue_limits(self.options.backlog_bytes)[1])
        self._t0 = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"rancherlab stream {self.scope}")

    async def aclose(self) -> None:
        """Stop at once: cancels the receive loop (and any wait or backoff) and closes the socket."""
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()  # again if a library swallowed the previous cancellation
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled():
            task.exception()  # retrieved; `_run` hands any error to the consumer through the queue
        if self._queue is not None:
            self._queue.put_nowait(_End())

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- event plumbing -----------------------------------------------------------------------------

    def _emit(self, event: Event, *, redacted: bool = False) -> Event:
        """Redact (unless `redacted`: built from already redacted objects), stamp and queue one event."""
        if not redacted:
            event = self.redactor.redact(event)  # once only: a placeholder redacted again would hide its length
        self._seq += 1
        stamped = event.stamped(
            seq=self._seq, conn=self._conn, t=round(time.monotonic() - self._t0, 6), ts=datetime.now(UTC)
        )
        assert self._queue is not None
        self._queue.put_nowait(stamped)
        return stamped

    def _marker(self, name: str, *, watch: Mapping[str, Any] | None = None, **info: Any) -> None:
        self._emit(marker(name, self.dialect, watch=watch, **info))

    def _emit_all(self, events: Iterable[Event]) -> None:
        """Emit what the object mirror returned: markers are redacted here, objects come from a redacted listing."""
        for event in events:
            self._emit(event, redacted=event.kind != "marker")

    # --- the connection loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._queue is not None
        try:
            await self._main()
        except asyncio.CancelledError:
            raise
        except RancherlabError as exc:
            log.warning("stream %s ended: %s", self.scope, exc)
            self._queue.put_nowait(_End(exc))
        except Exception as exc:  # a bug: hand it to the consumer rather than dying silently
            log.exception("stream %s failed", self.scope)
            self._queue.put_nowait(_End(exc))
        else:
            self._queue.put_nowait(_End())

    async def _main(self) -> None:
        opts = self.options
        # Building TLS contexts reads the CA bundle (tens of ms, more on a busy machine): in a worker thread, so
        # the loop (shared with other captures and the Explorer) never blocks on it. Once: an insecure context
        # warns once, not per reconnect.
        await asyncio.to_thread(self.prepare_tls)
        client = await asyncio.to_thread(RestClient, self.server, ssl_context=self._ssl, timeout=opts.rest_timeout)
        async with client as rest:
            self._rest = rest
            self._handshake = Handshake(self.server, self.scope, self.dialect, self.types, rest)
            failures, quick_closes = 0, 0
            last_down: float | None = None
            while True:
                try:
                    ws = await self._open()
                except Retry as exc:
                    failures += 1
                    self._give_up(failures, str(exc))
                    delay = opts.backoff(failures - 1)
                    log.info("connecting to %s failed (%s); retrying in %.2f s", self.endpoint, exc, delay)
                    await self._back_off(delay)
                    continue
                self._conn += 1
                opened = time.monotonic()
                self._marker(
                    CONNECTED,
                    endpoint=self.endpoint,
                    attempts=failures + 1,
                    gap_seconds=None if last_down is None else round(opened - last_down, 3),
                )
                closed, frames = await self._session(ws)
                last_down = time.monotonic()
                self._marker(
                    DISCONNECTED,
                    code=closed.code,
                    reason=closed.reason,
                    connected_seconds=round(last_down - opened, 3),
                    frames=frames,
                    liveness_timeout=closed.liveness,
                )
                if frames:
                    failures, quick_closes = 0, 0
                else:
                    failures += 1
                    if (
                        self.scope.cluster
                        and self.dialect == "norman"
                        and not closed.liveness
                        and last_down - opened < opts.quick_close
                    ):
                        quick_closes += 1
                        if quick_closes >= 2:
                            await self._check_cluster()
                    self._give_up(failures, f"closed without a frame ({closed.reason or closed.code})")
                await self._back_off(opts.backoff(failures))

    async def _back_off(self, delay: float) -> None:
        """Wait `delay` s before the next connection attempt, telling `next_attempt_at` when that is."""
        self.next_attempt_at = time.monotonic() + delay
        try:
            await asyncio.sleep(delay)
        finally:
            self.next_attempt_at = None

    def _give_up(self, failures: int, reason: str) -> None:
        limit = self.options.give_up_after
        if limit is not None and failures >= limit:
            raise ConnectGaveUpError(
                f"gave up after {failures} failed attempts to connect to {self.endpoint}; last error: {reason}. "
                "Check that the server is up and reachable from here (proxy, firewall, VPN)"
            )

    async def _check_cluster(self) -> None:
        """Norman upgrades a subscribe to an unknown cluster and then closes it: ask REST whether it exists."""
        assert self._rest is not None and self.scope.cluster is not None
        try:
            await self._rest.cluster(self.scope.cluster)
        except ServerUnavailableError:
            return
        log.info(
            "cluster %s exists but its subscribe closes at once: the cluster may be unavailable", self.scope.cluster
        )

    async def _open(self) -> ClientConnection:
        """One connection attempt; final failures raise typed errors, transient ones `Retry`."""
        opts = self.options
        self.connection_attempts += 1
        kwargs: dict[str, Any] = {}
        if self.server.url.secure:
            kwargs["ssl"] = self._ssl
        try:
            return await connect(
                self.endpoint,
                additional_headers=self.server.headers(),
                user_agent_header=USER_AGENT,
                origin=None,
                proxy=None if self.server.url.is_loopback else True,
                max_size=socket_limit(opts.max_frame_bytes),  # over max_frame_bytes: an anomaly, not a drop
                open_timeout=opts.open_timeout,
                ping_interval=opts.ws_ping_interval,
                ping_timeout=opts.ws_ping_timeout,
                close_timeout=opts.close_timeout,
                logger=self._wslog,
                **kwargs,
            )
        except CONNECT_ERRORS as exc:
            assert self._handshake is not None
            raise await self._handshake.error(exc) from None

    async def _session(self, ws: ClientConnection) -> tuple[_Closed, int]:
        """Run one connection until it ends; returns how it ended and how many frames it brought."""
        assert self._queue is not None
        inbox: Spool[str | bytes | _Closed] = Spool(
            queue_limits(self.options.backlog_bytes)[0], directory=self.options.spool_dir, gate=self._queue.wait_room
        )
        counter = [0]
        reader = asyncio.create_task(self._reader(ws, inbox, counter))
        helpers: set[asyncio.Task[None]] = set()
        try:
            if self.dialect == "norman":
                closed = await self._norman(inbox)
            else:
                closed = await self._steve(ws, inbox, helpers)
        except (Retry, ServerUnavailableError) as exc:
            closed = _Closed(None, f"closing to retry: {exc}")
        except RancherlabError as exc:
            self._marker(DISCONNECTED, code=None, reason=str(exc), frames=counter[0], error=type(exc).__name__)
            raise
        finally:
            # A stop that cancels again mid-cleanup (aclose() insists) must leave neither spool nor socket open.
            try:
                for task in (reader, *helpers):
                    task.cancel()
                await asyncio.gather(reader, *helpers, return_exceptions=True)
            finally:
                inbox.close()
                try:
                    await ws.close()
                finally:
                    if ws.transport is not None and not ws.transport.is_closing():
                        ws.transport.abort()
        return self._closed_by_limit(ws, closed), counter[0]

    def _closed_by_limit(self, ws: ClientConnection, closed: _Closed) -> _Closed:
        """A frame over the socket's limit makes websockets close with 1009 without waiting for the server's answer,
        so the code read back is 1006 and the reason empty: name the real cause and what to do about it."""
        sent = ws.protocol.close_sent
        if closed.liveness or sent is None or sent.code != CloseCode.MESSAGE_TOO_BIG:
            return closed
        limit = socket_limit(self.options.max_frame_bytes)
        return _Closed(
            int(CloseCode.MESSAGE_TOO_BIG),
            f"{sent.reason or 'message too big'}: a frame over {limit} bytes ({SOCKET_LIMIT_FACTOR} × max_frame_bytes) "
            "was refused and the connection closed (smaller ones over max_frame_bytes are kept as anomalies); raise "
            "max_frame_bytes (record --max-frame-bytes) to receive it",
        )

    async def _reader(self, ws: ClientConnection, inbox: Spool[str | bytes | _Closed], counter: list[int]) -> None:
        """Receive as fast as the server sends, with the liveness watchdog; waits on processing only while the
        oldest frame not yet processed is older than `max_lag` (memory is bounded either way: see `Spool`).

        One liveness timer per `timeout` seconds, not one per frame: when it fires, a frame (or a pause for
        processing) since it was set moves the deadline on; only real silence ends the connection.
        """
        timeout = self.options.liveness_for(self.dialect)
        max_lag = self.options.max_lag
        loop = asyncio.get_running_loop()
        last = loop.time()  # the last frame, or the end of the last pause
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                    # races with a received frame, and with pings arriving the reader would then never end.
                    # Cancelling recv() loses nothing (websockets): the next call returns the next message.
                    async with asyncio.timeout_at(last + timeout):
                        while True:
                            if max_lag is not None and inbox.age() > max_lag:
                                last = math.inf  # pausing is not silence
                                await inbox.wait_age(max_lag / 2)
                                last = loop.time()
                            raw = await ws.recv()
                            last = loop.time()
                            counter[0] += 1
                            inbox.put_nowait(raw)
                except TimeoutError:
                    now = loop.time()
                    if last == math.inf:
                        last = now  # the timer fired during a pause: the deadline starts again after it
                    if now - last < timeout:
                        continue
                    inbox.put_nowait(
                        _Closed(
                            None,
                            f"no frame for {timeout:g} s: connection presumed dead (liveness timeout)",
                            liveness=True,
                        )
                    )
                    return
        except ConnectionClosed:
            inbox.put_nowait(_Closed(ws.close_code, ws.close_reason or ""))

    # --- Norman -----------------------------------------------------------------------------------------

    async def _norman(self, inbox: Spool[str | bytes | _Closed]) -> _Closed:
        opts = self.options
        if (opts.snapshot and not self._snapshotted) or (opts.resync and self._conn > 1):
            listed, covered = await self._norman_list()
            if not self._snapshotted and opts.snapshot:
                self._emit_all(self._mirror.snapshot(listed))
                self._snapshotted = True
            else:
                self._emit_all(self._mirror.resync(listed, covered))
        while True:
            item = await inbox.get()
            if isinstance(item, _Closed):
                return item
            self._mirror.apply(self._emit(parse_frame(item, "norman", max_bytes=self.options.max_frame_bytes)))

    async def _norman_list(self) -> tuple[dict[Key, dict[str, Any]], set[str]]:
        assert self._rest is not None
        rest = self._rest
        types = list(self.types) or await rest.types(self.scope)

        async def one(name: str) -> Listing:
            try:
                return await rest.list_objects(self.scope, name)
            except NotFoundError:
                return Listing([])  # a schema without a list in this scope

        listings = await asyncio.gather(*(one(t) for t in types))
        listed = listed_by_key(await self._redacted([obj for listing in listings for obj in listing.items]))
        return listed, {*types, *(key[0] for key in listed)}

    async def _redacted(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Listed objects, redacted in a worker thread: a listing can hold thousands of secrets, and the
        reader must keep receiving meanwhile (the walk is Python code, so it yields the GIL to the loop)."""
        if not objects or not self.redactor.enabled:
            return objects
        redact = self.redactor.redact_value
        return await asyncio.to_thread(lambda: [redact(obj) for obj in objects])

    # --- Steve: the driver of `protocol.watch.WatchMachine` ---------------------------------------------

    async def _steve(
        self, ws: ClientConnection, inbox: Spool[str | bytes | _Closed], helpers: set[asyncio.Task[None]]
    ) -> _Closed:
        for action in self._watch_machine.connected():
            await self._perform(ws, action)  # in order, before reading: list (snapshot or resync), then watch
        while True:
            item = await inbox.get()
            if isinstance(item, _Closed):
                return item
            event = self._emit(parse_frame(item, "steve", max_bytes=self.options.max_frame_bytes))
            self._mirror.apply(event)
            for action in self._watch_machine.receive(event, time.monotonic()):
                await self._act(ws, action, helpers)

    async def _act(self, ws: ClientConnection, action: Action, helpers: set[asyncio.Task[None]]) -> None:
        """Execute an action of the watch machine taken on a received message."""
        if isinstance(action, Stopped):
            self._marker(WATCH_STOPPED, watch=action.state.watch.fields(), error=action.error)
        elif isinstance(action, Fatal):
            if action.reason == "unknown_type":
                raise await self._unknown_steve_type(action.state.watch, action.error)
            raise PermissionDeniedError(
                f"every watch on {self.scope} was refused; the last said: {action.error}. The credential's user needs "
                "list and watch permission on these types"
            )
        else:  # a re-list or re-watch runs beside the reader, so frames keep flowing during its back-off and list
            self._spawn(helpers, self._guarded(ws, self._perform(ws, action)))

    async def _perform(self, ws: ClientConnection, action: Relist | Rewatch | Stopped | Fatal) -> None:
        if isinstance(action, Relist):
            if action.delay:
                await asyncio.sleep(action.delay)
            await self._steve_list(action.state)
            if action.then_watch:
                await self._send_watch(ws, action.state.watch, action.state.revision)
        elif isinstance(action, Rewatch):
            if action.delay:
                await asyncio.sleep(action.delay)
            await self._send_watch(ws, action.state.watch, action.revision)

    async def _steve_list(self, w: WatchState) -> None:
        """List what a watch covers: the snapshot the first time, a resync afterwards."""
        assert self._rest is not None
        try:
            listing = await self._rest.list_watch(self.scope, w.watch)
        except NotFoundError as exc:
            if isinstance(exc, ClusterNotFound):
                raise
            raise await self._unknown_steve_type(w.watch, str(exc)) from None
        listed = listed_by_key(await self._redacted(listing.items))
        if self._watch_machine.is_snapshot(w):
            self._emit_all(self._mirror.snapshot(listed))
        else:
            covered = {w.watch.type, *(k[0] for k in listed)}
            self._emit_all(self._mirror.resync(listed, covered, old_keys=w.keys, watch=w.watch.fields()))
        self._watch_machine.listed(w, listed, listing.revision)

    async def _send_watch(self, ws: ClientConnection, watch: Watch, revision: str | None) -> None:
        message = watch.subscribe_message(revision)
        try:
            await ws.send(message)
        except ConnectionClosed:
            return  # the reader reports the close; the next connection watches again
        self._emit(parse_sent(message, "steve"))

    def _spawn(self, helpers: set[asyncio.Task[None]], coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        helpers.add(task)
        task.add_done_callback(helpers.discard)
        task.add_done_callback(self._helper_done)

    def _helper_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        # a final error inside a re-watch ends the whole stream, like one in the main loop
        if self._task is not None and not self._task.done():
            exc = task.exception()
            assert self._queue is not None and exc is not None
            self._queue.put_nowait(_End(exc))
            self._task.cancel()

    async def _unknown_steve_type(self, watch: Watch, error: str) -> UnknownTypeError:
        assert self._handshake is not None
        valid = await self._handshake.valid_types()
        return UnknownTypeError(
            f"Steve has no type {watch.type!r} in {self.scope} ({error}). Steve takes schema ids or plural names, "
            f"ignoring case (pod, pods, apps.deployment); a type you may not see at all is reported the same way. "
            f"Types this scope offers: {type_list(valid)}",
            types=(watch.type,),
            valid=valid,
        )

    async def _guarded(self, ws: ClientConnection, coro: Any) -> None:
        """Run a helper; a transient failure closes the connection, so the next one re-lists and re-watches."""
        try:
            await coro
        except (ServerUnavailableError, ConnectionClosed) as exc:
            log.info("a re-list on %s failed (%s); reconnecting", self.scope, exc)
            await ws.close()


async def subscribe(
    url: str | None = None,
    scope: str | Scope | None = None,
    *,
    types: Iterable[str] = (),
    watches: Iterable[Watch] = (),
    credentials: Credentials | str | None = None,
    cacert: str | None = None,
    insecure: bool | None = None,
    options: StreamOptions | None = None,
    env: Mapping[str, str] | None = None,
    cli_config: Any = None,
    redactor: Redactor | None = None,
    **tuning: Any,
) -> AsyncGenerator[Event, None]:
    """`async for event in subscribe(url, "steve", types=["pod"], credentials=token):` — a live stream.

    `tuning` overrides `StreamOptions` fields (`snapshot=False`, `liveness=5`, ...). Breaking out of the
    loop closes the connection. Events arrive redacted (see `Stream`; `redactor=Redactor(enabled=False)`
    turns it off).
    """
    opts = replace(options or StreamOptions(), **tuning) if tuning else options
    stream = Stream(
        url,
        scope,
        types=types,
        watches=watches,
        credentials=credentials,
        cacert=cacert,
        insecure=insecure,
        options=opts,
        env=env,
        cli_config=cli_config,
        redactor=redactor,
    )
    try:
        async for event in stream:
            yield event
    finally:
        await stream.aclose()


__all__ = ["NORMAN_LIVENESS", "STEVE_LIVENESS", "Stream", "StreamOptions", "subscribe"]
