"""Offline replay: a recording as the same stream of `Event`s the live run produced, paced like it was.

The events are the recorded ones (same `seq`, `t`, `ts`, `conn`), so sinks cannot tell a replay from
the live stream; only the pacing is new. `ReplaySource` is the same as an event source for `Capture`
(`rancherlab.capture_recording`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from .errors import UsageError
from .protocol.event import Dialect, Event
from .recording import Recording, read_recording
from .redaction import Redactor

# With speed=inf the async form still yields to the event loop this often, so other tasks keep running.
_YIELD_EVERY = 256


def replay(
    path: str | os.PathLike[str],
    speed: float = 1.0,
    idle_cap: float | None = None,
    *,
    strict: bool = True,
    max_frame_bytes: int | None = None,
) -> Iterator[Event]:
    """Yield a recording's events, waiting (recorded gap / `speed`) between them.

    `speed=float("inf")` does not wait at all. `idle_cap` caps each wait at that many seconds, so a
    recording with long silences replays quickly but still in order. Backward jumps in `t` (a folder of
    several recordings) do not wait. Raises at once (not at the first event) like `read_recording`
    (`FileNotFoundError`, `RecordingFormatError`, ...) and `UsageError` for a bad `speed` or `idle_cap`.
    """
    _check(speed, idle_cap)
    events = read_recording(path, strict=strict, max_frame_bytes=max_frame_bytes)
    if math.isinf(speed):
        return iter(events)  # nothing to wait for: the reader's own pace
    return _paced(events, _Schedule(speed, idle_cap))


def _paced(events: Iterable[Event], schedule: _Schedule) -> Iterator[Event]:
    for event in events:
        delay = schedule.delay(event.t, time.monotonic())
        if delay > 0:
            time.sleep(delay)
        yield event


async def areplay(
    path: str | os.PathLike[str],
    speed: float = 1.0,
    idle_cap: float | None = None,
    *,
    strict: bool = True,
    max_frame_bytes: int | None = None,
) -> AsyncIterator[Event]:
    """The async form of `replay`: an async iterator of `Event`, like a live stream."""
    _check(speed, idle_cap)
    schedule = _Schedule(speed, idle_cap)
    since_yield = 0
    loop = asyncio.get_running_loop()
    for event in read_recording(path, strict=strict, max_frame_bytes=max_frame_bytes):
        delay = schedule.delay(event.t, loop.time())
        if delay > 0:
            since_yield = 0
            await asyncio.sleep(delay)
        else:
            since_yield += 1
            if since_yield >= _YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)
        yield event


class ReplaySource:
    """A recording as an `EventSource` (see `rancherlab.source`): `Capture` runs it like a live stream.

    Events are the recorded ones, paced as `replay` paces them (`speed`, `idle_cap`); the header's facts
    (dialect, scope, server, endpoint, redaction policy, server version, frame limit) are the source's,
    so a recording made from a replay has the same header apart from its start time. The file is read
    in a worker thread, a batch at a time, so the loop stays free. Raises like `read_recording`
    (`FileNotFoundError`, `RecordingFormatError`, ...) when built.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        speed: float = 1.0,
        idle_cap: float | None = None,
        *,
        strict: bool = True,
        max_frame_bytes: int | None = None,
    ) -> None:
        _check(speed, idle_cap)
        self.recording: Recording = read_recording(path, strict=strict, max_frame_bytes=max_frame_bytes)
        header = self.recording.header
        self.speed = speed
        self.idle_cap = idle_cap
        self.dialect: Dialect = header.dialect
        self.scope = header.scope
        self.server_base = header.server
        self.endpoint = header.endpoint
        # The events were redacted when recorded; this redactor carries that policy on to a new header.
        policy = header.redaction
        self.redactor: Redactor = _RecordedPolicy(policy.policy if isinstance(policy, Redactor) else policy)
        self.server_version = header.server_version
        self.max_frame_bytes = max_frame_bytes or header.max_frame_bytes
        self._events: Iterator[Event] | None = None
        self._due: deque[tuple[float, Event]] = deque()
        self._schedule = _Schedule(speed, idle_cap)
        self._wake = asyncio.Event()
        self._closed = False
        self._done = False

    def __repr__(self) -> str:
        return f"<ReplaySource {self.recording.path.name} {self.dialect} {self.scope} speed={self.speed:g}>"

    async def identify(self) -> str | None:
        return self.server_version

    def start(self) -> None:
        if self._events is None:
            self._events = iter(self.recording)

    async def next_batch(self, limit: int = 1000) -> list[Event]:
        self.start()
        if not self._due and not self._done and not self._closed:
            await self._read_ahead(limit)
        if self._closed or not self._due:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        wait = self._due[0][0] - loop.time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            if self._closed:
                raise StopAsyncIteration
        elif not math.isfinite(self.speed):
            await asyncio.sleep(0)  # as fast as possible, but other tasks still run between batches
        now = loop.time()
        batch = [self._due.popleft()[1]]
        while self._due and len(batch) < limit and self._due[0][0] <= now:
            batch.append(self._due.popleft()[1])
        return batch

    async def aclose(self) -> None:
        self._closed = True
        self._wake.set()

    async def _read_ahead(self, limit: int) -> None:
        events = self._events
        assert events is not None
        chunk = await asyncio.to_thread(lambda: [e for _, e in zip(range(limit), events)])
        if len(chunk) < limit:
            self._done = True
        loop = asyncio.get_running_loop()
        for event in chunk:
            self._due.append((self._schedule.due(event.t, loop.time()), event))


class _RecordedPolicy(Redactor):
    """A redactor configured like a recording's header says, reporting that header's policy as its own
    (the credential count included: the credentials themselves were never stored)."""

    __slots__ = ("_recorded",)

    def __init__(self, policy: Mapping[str, Any]) -> None:
        base = Redactor.from_policy(policy)
        super().__init__(
            base.enabled, secrets=base.secrets, tokens=base.tokens, pem=base.pem, extra_paths=base.extra_paths
        )
        self._recorded = dict(policy)

    @property
    def policy(self) -> dict[str, Any]:
        return dict(self._recorded)


def _check(speed: float, idle_cap: float | None) -> None:
    if not isinstance(speed, (int, float)) or math.isnan(speed) or speed <= 0:
        raise UsageError("speed must be a positive number (1.0 = as recorded, float('inf') = as fast as possible)")
    if idle_cap is not None and (math.isnan(idle_cap) or idle_cap < 0):
        raise UsageError("idle_cap must be a number of seconds >= 0, or None")


class _Schedule:
    """When each event is due, on a clock that starts at the first event (so waits do not drift)."""

    def __init__(self, speed: float, idle_cap: float | None) -> None:
        self.speed = speed
        self.idle_cap = idle_cap
        self.start: float | None = None
        self.offset = 0.0
        self.last_t: float | None = None

    def delay(self, t: float, now: float) -> float:
        """Seconds from `now` until the event recorded at `t` is due (<= 0: already due)."""
        return self.due(t, now) - now

    def due(self, t: float, now: float) -> float:
        """When (on the clock of `now`) the event recorded at `t` is due; the first event is due at once."""
        if self.start is None or self.last_t is None:
            self.start, self.last_t = now, t
            return now
        gap = max(t - self.last_t, 0.0) / self.speed if math.isfinite(self.speed) else 0.0
        if self.idle_cap is not None:
            gap = min(gap, self.idle_cap)
        self.last_t = t
        self.offset += gap
        return self.start + self.offset
