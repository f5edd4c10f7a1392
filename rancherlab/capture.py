"""`capture(...)`: a live stream that runs by itself while you do other things (notebook cells, scripts).

The stream runs on rancherlab's own event loop in a daemon thread, never on the caller's: a notebook's
loop does not run between cells on ipykernel 7, `asyncio.run` fails inside a running loop, and
nest_asyncio is archived. So `capture()` returns at once from a cell, a script or a coroutine, and keeps
receiving while no cell runs. Every blocking method has an async form (`astop`, `await capture`,
`async with`).

A `Capture` consumes any event source (`rancherlab.source.EventSource`): a live `Stream` (`capture()`)
or a recording replayed at some speed (`capture_recording()`), so the same counters, sinks, DataFrames
and recordings come out of both.

Receiving never waits on sinks: the stream's reader queues frames; this consumer takes them in batches,
keeps the recent ones in `events`, counts them in `stats`, and hands each batch to the recording writer
in a worker thread. Events arrive already redacted by the source, so `events`, sinks, DataFrames and the
recording all see the same placeholders, and the writer writes events as they are.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Self

from . import _loop
from .credentials import Credentials
from .errors import RancherlabError
from .protocol.event import ANOMALY, CONNECTED, DISCONNECTED, RESYNC_STARTED, WATCH_STOPPED, Event
from .protocol.steve import Watch
from .recording import RecordingHeader, RecordingWriter
from .redaction import Redactor
from .replay import ReplaySource
from .scope import Scope
from .source import EventSource
from .stream import Stream, StreamOptions

log = logging.getLogger("rancherlab.capture")

DEFAULT_MAX_EVENTS: Final = 10_000
_STOP_TIMEOUT: Final = 30.0


def event_loop() -> asyncio.AbstractEventLoop:
    """The loop rancherlab's background work runs on (widgets schedule their work on it too)."""
    return _loop.shared().loop


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """Counters of a capture; `Capture.stats` returns a fresh copy each time."""

    state: str = "starting"  # starting, running, stopped, done, failed
    events: int = 0
    frames: int = 0  # received frames, pings included
    resource_frames: int = 0  # received `resource.*` frames (what --count counts)
    objects: int = 0  # events carrying an object: frames, snapshot and resync
    pings: int = 0
    snapshot: int = 0
    resyncs: int = 0
    connections: int = 0
    disconnects: int = 0
    gap_seconds: float = 0.0
    watches_stopped: int = 0
    anomalies: int = 0
    recorded: int = 0
    started: datetime | None = None
    last_event: datetime | None = None
    error: str | None = None


class Capture:
    """A running capture of an event source. Use `capture(...)` (live) or `capture_recording(...)` to make one.

    `stream` is the source (a `Stream`, a `ReplaySource`, or anything that satisfies `EventSource`).
    """

    def __init__(
        self,
        stream: EventSource,
        *,
        record: str | os.PathLike[str] | None,
        max_events: int,
        count: int | None,
        duration: float | None,
        overwrite: bool,
        on_event: Callable[[Event], None] | None,
    ) -> None:
        self.stream: EventSource = stream
        self.events: deque[Event] = deque(maxlen=max_events)
        self.record_path = Path(record) if record is not None else None
        self.error: BaseException | None = None
        self.redactor: Redactor = stream.redactor  # the stream redacts; the recording header says how
        self._count = count
        self._duration = duration
        self._overwrite = overwrite
        self._sinks: list[Callable[[Event], None]] = [on_event] if on_event else []
        self._stats = CaptureStats(started=datetime.now(UTC))
        self._writer: RecordingWriter | None = None
        self._done = threading.Event()
        self._stopping = False  # stop() was called
        self._ended_by: str | None = None  # "count" or "duration" when a limit ended it
        self._loop = event_loop()
        self._task: asyncio.Task[None] | None = None
        self._future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(self._main(), self._loop)

    def __repr__(self) -> str:
        s = self._stats
        return (
            f"<Capture {self.stream.scope} at {self.stream.server_base}: {s.state}, {s.events} events, "
            f"{s.connections} connections>"
        )

    # --- public, sync ------------------------------------------------------------------------------

    @property
    def stats(self) -> CaptureStats:
        return self._stats

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def frame(self, *, pings: bool = False) -> Any:
        """The captured events as a DataFrame (see `rancherlab.frame`); pings only with `pings=True`.

        Takes a copy of `events` first (one C call), so a batch arriving meanwhile cannot disturb it.
        """
        # lazily: the I/O layer must not import the analysis layer (pandas)
        from .analysis import frame

        return frame(list(self.events), pings=pings)

    def add_sink(self, fn: Callable[[Event], None]) -> None:
        """Call `fn(event)` on rancherlab's loop thread for every later event; keep it quick."""
        self._sinks.append(fn)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> Capture:
        """Stop now: the socket closes, what was received is written, the recording is closed."""
        if _loop.on_shared():
            raise RuntimeError("stop() from rancherlab's own loop would deadlock; use `await capture.astop()`")
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout)
        self._done.wait(timeout)
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the capture ends (count, duration, stop or a final error); True if it has.

        A final error (bad credential, unknown type, TLS, ...) is raised here.
        """
        finished = self._done.wait(timeout)
        if finished and self.error is not None:
            raise self.error
        return finished

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- public, async -----------------------------------------------------------------------------

    async def astop(self) -> Capture:
        if _loop.on_shared():
            await self._shutdown()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop))
        await self._finished()
        return self

    async def _finished(self) -> None:
        if _loop.on_shared():
            if self._task is not None:
                await asyncio.shield(self._task)
            return
        await asyncio.wrap_future(self._future)

    def __await__(self) -> Generator[Any, None, Capture]:
        """`await capture` waits until it ends, and raises its final error if there was one."""
        yield from self._finished().__await__()
        if self.error is not None:
            raise self.error
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    # --- on rancherlab's loop ----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self._stopping = True
        await self.stream.aclose()
        if self._task is not None:
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        timer = None
        try:
            if self.record_path is not None:
                await self._open_recording()
            self._set(state="running")
            if self._duration is not None:
                timer = asyncio.get_running_loop().call_later(self._duration, self._stop_soon)
            self.stream.start()
            while True:
                try:
                    batch = await self.stream.next_batch()
                except StopAsyncIteration:
                    break
                batch, reached = self._take(batch)
                if self._writer is not None and batch:
                    await asyncio.to_thread(self._write, batch)
                if reached:
                    break
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            self.error = exc
            if not isinstance(exc, RancherlabError):
                log.exception("capture of %s failed", self.stream.scope)
        finally:
            if timer is not None:
                timer.cancel()
            await self.stream.aclose()
            if self._writer is not None:
                ended = "error" if self.error else "stop" if self._stopping else (self._ended_by or "end")
                summary = {"stopped_by": ended, **({"error": type(self.error).__name__} if self.error else {})}
                await asyncio.to_thread(self._writer.close, summary)
            state = "failed" if self.error else ("stopped" if self._stopping else "done")
            self._set(state=state, error=str(self.error) if self.error else None)
            self._done.set()

    def _stop_soon(self) -> None:
        self._ended_by = "duration"
        asyncio.get_running_loop().create_task(self.stream.aclose())

    async def _open_recording(self) -> None:
        assert self.record_path is not None
        source = self.stream
        version = await source.identify()
        header = RecordingHeader(
            source.dialect,
            str(source.scope),
            source.server_base,
            source.endpoint,
            self.redactor,
            server_version=version,
            max_frame_bytes=source.max_frame_bytes,
        )
        self._writer = await asyncio.to_thread(RecordingWriter, self.record_path, header, overwrite=self._overwrite)

    def _write(self, batch: list[Event]) -> None:
        assert self._writer is not None
        self._writer.write_many(batch)  # redacted once, by the stream: never again (a placeholder would be hidden)
        self._set(recorded=self._writer.count)

    def _take(self, batch: list[Event]) -> tuple[list[Event], bool]:
        """Count and keep a batch; cut it after the `count`-th resource frame."""
        s = self._stats
        counts = {
            k: getattr(s, k)
            for k in (
                "events",
                "frames",
                "resource_frames",
                "objects",
                "pings",
                "snapshot",
                "resyncs",
                "connections",
                "disconnects",
                "watches_stopped",
                "anomalies",
            )
        }
        gap = s.gap_seconds
        reached = False
        taken: list[Event] = []
        for event in batch:
            taken.append(event)
            counts["events"] += 1
            if event.kind == "frame":
                counts["frames"] += 1
                counts["pings"] += event.is_ping
                counts["resource_frames"] += event.name.startswith("resource.")
            counts["objects"] += event.is_resource
            counts["snapshot"] += event.kind == "snapshot"
            if event.kind == "marker":
                counts["connections"] += event.name == CONNECTED
                counts["disconnects"] += event.name == DISCONNECTED
                counts["resyncs"] += event.name == RESYNC_STARTED
                counts["watches_stopped"] += event.name == WATCH_STOPPED
                counts["anomalies"] += event.name == ANOMALY
                if event.name == CONNECTED and event.info.get("gap_seconds"):
                    gap += float(event.info["gap_seconds"])
            self.events.append(event)
            for sink in self._sinks:
                try:
                    sink(event)
                except Exception:
                    log.exception("a capture sink failed on %r; it keeps getting later events", event)
            if self._count is not None and counts["resource_frames"] >= self._count:
                reached = True
                self._ended_by = "count"
                break
        self._set(**counts, gap_seconds=round(gap, 3), last_event=taken[-1].ts if taken else s.last_event)
        return taken, reached

    def _set(self, **changes: Any) -> None:
        self._stats = replace(self._stats, **changes)  # one reference swap: readers in other threads see whole copies


def capture(
    url: str | None = None,
    scope: str | Scope | None = None,
    *,
    types: Iterable[str] = (),
    watches: Iterable[Watch] = (),
    credentials: Credentials | str | None = None,
    cacert: str | None = None,
    insecure: bool | None = None,
    record: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    redactor: Redactor | None = None,
    count: int | None = None,
    duration: float | None = None,
    max_events: int = DEFAULT_MAX_EVENTS,
    on_event: Callable[[Event], None] | None = None,
    options: StreamOptions | None = None,
    env: Mapping[str, str] | None = None,
    cli_config: Any = None,
    **tuning: Any,
) -> Capture:
    """Start capturing now and return at once; see `Capture` (`.events`, `.stats`, `.stop()`, `.wait()`).

    Every event is redacted as it enters (`events`, `on_event`, DataFrames and `record` alike) by `redactor`
    (default: secrets, tokens, PEM keys and the credential in use; `Redactor(enabled=False)`: off).
    `record="x.jsonl[.gz]"` writes a recording whose header records that policy. `count` stops after that many received `resource.*` frames, `duration`
    after that many seconds. Usage errors (scope, URL, credentials) raise here; connection errors are
    raised by `wait()` / `await`. Memory stays bounded at any burst: `backlog_bytes=` (default 64 MB),
    `max_lag=` and `spool_dir=` (`StreamOptions` fields, as `tuning`) say how (see `rancherlab.stream`).
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
    stream.prepare_tls()
    return Capture(
        stream,
        record=record,
        max_events=max_events,
        count=count,
        duration=duration,
        overwrite=overwrite,
        on_event=on_event,
    )


def capture_recording(
    path: str | os.PathLike[str],
    speed: float = 1.0,
    *,
    idle_cap: float | None = None,
    record: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    count: int | None = None,
    duration: float | None = None,
    max_events: int = DEFAULT_MAX_EVENTS,
    on_event: Callable[[Event], None] | None = None,
    strict: bool = True,
    max_frame_bytes: int | None = None,
) -> Capture:
    """Run a recording through a `Capture`, as if it were live; returns at once (see `capture`).

    `path` is a recording file or folder; events come at `speed` times the recorded pace
    (`float("inf")`: as fast as they can be read; `idle_cap`: no wait longer than that many seconds),
    unchanged (same `seq`, `t`, `ts`, `conn`, already redacted), so `.events`, `.stats`, `.frame()`, sinks
    and `record=` give what the live capture that made the recording gave. `count` and `duration` stop
    it early as in `capture`. Raises `FileNotFoundError` / `RecordingError` here for a missing or
    unreadable recording, `ValueError` for a bad `speed` or `idle_cap`; a corrupt line later (with
    `strict=True`) is raised by `wait()` / `await`.
    """
    source = ReplaySource(path, speed, idle_cap, strict=strict, max_frame_bytes=max_frame_bytes)
    return Capture(
        source,
        record=record,
        max_events=max_events,
        count=count,
        duration=duration,
        overwrite=overwrite,
        on_event=on_event,
    )


__all__ = ["DEFAULT_MAX_EVENTS", "Capture", "CaptureStats", "capture", "capture_recording", "event_loop"]
