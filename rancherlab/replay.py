"""Offline replay: a recording as the same stream of `Event`s the live run produced, paced like it was.

The events are the recorded ones (same `seq`, `t`, `ts`, `conn`), so sinks cannot tell a replay from
the live stream; only the pacing is new.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from typing import AsyncIterator, Iterator

from .errors import UsageError
from .protocol.event import Event
from .recording import read_recording

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
    several recordings) do not wait.
    """
    _check(speed, idle_cap)
    schedule = _Schedule(speed, idle_cap)
    for event in read_recording(path, strict=strict, max_frame_bytes=max_frame_bytes):
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
        if self.start is None or self.last_t is None:
            self.start, self.last_t = now, t
            return 0.0
        gap = max(t - self.last_t, 0.0) / self.speed if math.isfinite(self.speed) else 0.0
        if self.idle_cap is not None:
            gap = min(gap, self.idle_cap)
        self.last_t = t
        self.offset += gap
        return self.start + self.offset - now
