"""Replay: the recorded Events, in order, paced by their recorded `t` (scaled by speed, gaps capped)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rancherlab.protocol import CONNECTED, Event, marker
from rancherlab.recording import RecordingWarning
from rancherlab.replay import areplay, replay

from .test_recording import norman_events, steve_events, write


def timed(dialect: str, ts: list[float]) -> list[Event]:
    return [marker(CONNECTED, dialect, seq=i + 1, t=t, n=i) for i, t in enumerate(ts)]  # type: ignore[arg-type]


def test_as_fast_as_possible_gives_the_recorded_events(tmp_path: Path) -> None:
    for make in (norman_events, steve_events):
        events = make()
        path = write(tmp_path / f"{make.__name__}.jsonl.gz", events)
        start = time.monotonic()
        assert list(replay(path, speed=float("inf"))) == events
        assert time.monotonic() - start < 1.0


def test_pacing_follows_t_divided_by_speed(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", timed("norman", [10.0, 10.2, 10.2, 10.6]))
    start = time.monotonic()
    arrivals = [(e.t, time.monotonic() - start) for e in replay(path, speed=2.0)]
    assert [t for t, _ in arrivals] == [10.0, 10.2, 10.2, 10.6]
    for t, at in arrivals:
        assert (t - 10.0) / 2 - 0.02 <= at <= (t - 10.0) / 2 + 0.15


def test_idle_cap_shortens_long_silences(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", timed("steve", [0.0, 3600.0, 3600.1, 7200.0]))
    start = time.monotonic()
    got = list(replay(path, speed=1.0, idle_cap=0.05))
    elapsed = time.monotonic() - start
    assert len(got) == 4 and 0.14 <= elapsed < 0.6


def test_async_replay(tmp_path: Path) -> None:
    events = steve_events()
    path = write(tmp_path / "r.jsonl", events)

    async def collect(speed: float, cap: float | None) -> tuple[list[Event], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        out = [e async for e in areplay(path, speed=speed, idle_cap=cap)]
        task.cancel()
        if speed != float("inf"):
            assert ticks > 10  # the loop kept running other tasks while replay waited
        return out, loop.time() - start

    got, _ = asyncio.run(collect(float("inf"), None))
    assert got == events
    span = events[-1].t - events[0].t
    got, elapsed = asyncio.run(collect(span / 0.2, None))  # the whole stream in about 0.2 s
    assert got == events and 0.15 <= elapsed < 1.0


def test_backward_time_and_bad_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", timed("norman", [5.0, 1.0, 1.05]))
    start = time.monotonic()
    assert [e.t for e in replay(path)] == [5.0, 1.0, 1.05]
    assert time.monotonic() - start < 0.3
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="speed"):
            list(replay(path, speed=bad))
    with pytest.raises(ValueError, match="idle_cap"):
        list(replay(path, idle_cap=-1))


def test_tolerant_replay_of_a_damaged_file(tmp_path: Path) -> None:
    events = norman_events()
    data = write(tmp_path / "r.jsonl", events).read_bytes()
    (tmp_path / "cut.jsonl").write_bytes(data[: data.rindex(b'{"summary"') - 20])
    with pytest.warns(RecordingWarning):
        assert list(replay(tmp_path / "cut.jsonl", speed=float("inf"), strict=False)) == events[:-1]
