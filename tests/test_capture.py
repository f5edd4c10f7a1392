"""`capture()`: runs on rancherlab's own loop thread, from sync code and inside a running loop; records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rancherlab.capture import Capture, capture
from rancherlab.errors import AuthenticationError
from rancherlab.protocol.event import CONNECTED
from rancherlab.recording import read_recording
from rancherlab.simulator import Simulator

from ._stream_support import FAST, SECRET, SIM_FAST, TOKEN

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=11, rate=20, token=TOKEN, **SIM_FAST) as s:
        yield s


def _start(sim: Simulator, scope: str = "steve", **kwargs: object) -> Capture:
    kwargs.setdefault("types", ["pod", "configmap"] if scope.startswith("steve") else ["pod", "deployment"])
    return capture(sim.url, scope, credentials=sim.token, env={}, cli_config=False, options=FAST, **kwargs)  # type: ignore[arg-type]


def test_capture_returns_at_once_and_keeps_receiving(sim: Simulator) -> None:
    started = time.monotonic()
    cap = _start(sim, max_events=10)
    assert time.monotonic() - started < 0.5
    time.sleep(1.2)  # the caller does something else; nothing of ours runs in this thread
    seen = cap.stats.events
    time.sleep(0.6)
    assert cap.stats.events > seen > 0
    assert len(cap.events) == 10 < cap.stats.events  # bounded
    assert cap.stats.connections == 1 and cap.stats.pings >= 2 and cap.stats.state == "running"
    begun = time.monotonic()
    cap.stop()
    assert time.monotonic() - begun < 1.0  # immediate
    assert not cap.running and cap.stats.state == "stopped"
    assert cap.wait(0) is True


def test_capture_inside_a_running_loop(sim: Simulator) -> None:
    async def main() -> Capture:
        async with _start(sim, "global", types=["cluster", "node"]) as cap:
            ticks = 0
            for _ in range(10):  # our own loop stays free while the capture receives
                await asyncio.sleep(0.1)
                ticks += 1
            assert ticks == 10
            assert cap.stats.pings >= 2
        return cap

    cap = asyncio.run(main())
    assert cap.stats.state == "stopped"
    assert next(iter(cap.events)).name == CONNECTED


def test_record_count_and_header(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "steve.jsonl"
    cap = _start(sim, record=path, count=10)
    assert cap.wait(20)
    assert cap.stats.state == "done" and cap.stats.resource_frames == 10
    rec = read_recording(path)
    header = rec.header
    assert (header.dialect, header.scope, header.server) == ("steve", "steve", sim.url)
    assert header.server_version == sim.world.server_version
    assert header.endpoint == "/v1/subscribe" and header.redaction["enabled"] is True
    assert header.max_frame_bytes == FAST.max_frame_bytes
    assert header.redaction == cap.redactor.policy and cap.redactor is cap.stream.redactor  # the stream redacted
    events = list(rec)
    assert len(events) == cap.stats.recorded == cap.stats.events
    assert sum(e.kind == "frame" and e.name.startswith("resource.") for e in events) == 10
    assert [e.kind for e in events if e.kind == "snapshot"]
    text = path.read_text()
    assert SECRET not in text and TOKEN not in text
    assert rec.summary is not None and rec.summary.get("stopped_by") == "count"


def test_record_duration_norman_gz(sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "norman.jsonl.gz"
    project = sim.world.projects("local")[0]
    begun = time.monotonic()
    cap = _start(sim, f"project:{project}", record=path, duration=0.8)
    assert cap.wait(10)
    assert 0.7 < time.monotonic() - begun < 3
    rec = read_recording(path)
    assert rec.header.scope == f"project:{project}" and rec.header.dialect == "norman"
    assert rec.header.endpoint.startswith(f"/v3/projects/{project}/subscribe?resourceTypes=pod")
    assert len(list(rec)) == cap.stats.events


def test_final_error_is_raised_by_wait_and_await(tmp_path: Path) -> None:
    with Simulator(seed=1, rate=0, **SIM_FAST) as other:  # does not know our token
        cap = capture(
            other.url, "global", credentials=TOKEN, env={}, cli_config=False, options=replace(FAST, snapshot=False)
        )
        with pytest.raises(AuthenticationError) as err:
            cap.wait(10)
        assert SECRET not in str(err.value) and SECRET not in repr(cap)
        assert cap.stats.state == "failed"

        async def awaited() -> None:
            await capture(other.url, "global", credentials=TOKEN, env={}, cli_config=False, options=FAST)

        with pytest.raises(AuthenticationError):
            asyncio.run(awaited())


def test_sinks_never_block_receiving(sim: Simulator) -> None:
    got: list[int] = []

    def bad_sink(event: object) -> None:
        got.append(1)
        raise ValueError("a broken sink")

    import logging

    logging.getLogger("rancherlab.capture").disabled = True
    try:
        cap = _start(sim, on_event=bad_sink)
        time.sleep(0.8)
        cap.stop()
    finally:
        logging.getLogger("rancherlab.capture").disabled = False
    assert len(got) == cap.stats.events > 3


def test_frame_is_the_events_dataframe(sim: Simulator) -> None:
    import rancherlab as rl

    cap = _start(sim)
    deadline = time.monotonic() + 10
    while cap.stats.pings < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    cap.stop()
    df = cap.frame()
    events = list(cap.events)
    assert len(df) == sum(not e.is_ping for e in events) > 0
    assert df["seq"].tolist() == [e.seq for e in events if not e.is_ping]
    assert set(df["kind"]) >= {"marker", "snapshot"}
    with_pings = cap.frame(pings=True)
    assert len(with_pings) == len(events) and with_pings.equals(rl.frame(events, pings=True))


def test_a_recording_through_capture_gives_what_the_live_run_gave(sim: Simulator, tmp_path: Path) -> None:
    import math

    import rancherlab as rl
    from rancherlab.source import EventSource
    from rancherlab.stream import Stream

    live_path = tmp_path / "live.jsonl"
    live = _start(sim, record=live_path, count=8, max_events=100_000)
    assert live.wait(20) and live.stats.state == "done"
    assert isinstance(live.stream, Stream) and isinstance(live.stream, EventSource)

    again_path = tmp_path / "again.jsonl"
    replayed = rl.capture_recording(live_path, speed=math.inf, record=again_path, max_events=100_000)
    assert isinstance(replayed.stream, EventSource)
    assert replayed.wait(20) and replayed.stats.state == "done"

    live_events = list(live.events)
    assert list(replayed.events) == live_events == list(read_recording(live_path))
    assert replayed.frame(pings=True).equals(live.frame(pings=True))
    counters = ("events", "frames", "resource_frames", "objects", "pings", "snapshot", "connections", "recorded")
    assert [getattr(replayed.stats, k) for k in counters] == [getattr(live.stats, k) for k in counters]
    # recording the replay gives the same events under the same header facts
    again = read_recording(again_path)
    assert list(again) == live_events
    first = read_recording(live_path).header
    assert (again.header.dialect, again.header.scope, again.header.server, again.header.endpoint) == (
        first.dialect,
        first.scope,
        first.server,
        first.endpoint,
    )
    assert (again.header.server_version, again.header.redaction) == (first.server_version, first.redaction)
    assert TOKEN not in again_path.read_text()


def test_capture_recording_paces_like_replay_and_stops(sim: Simulator, tmp_path: Path) -> None:
    import rancherlab as rl

    path = tmp_path / "paced.jsonl"
    live = _start(sim, record=path, duration=1.0)
    assert live.wait(20)
    recorded = list(read_recording(path))
    span = recorded[-1].t - recorded[0].t
    assert span > 0.7

    begun = time.monotonic()
    paced = rl.capture_recording(path, speed=4.0)
    assert paced.wait(20)
    took = time.monotonic() - begun
    assert span / 4 * 0.8 < took < span / 4 + 2.0  # paced, not as fast as it can be read
    assert list(paced.events) == recorded

    slow = rl.capture_recording(path, speed=0.01)  # would take minutes
    time.sleep(0.2)
    begun = time.monotonic()
    slow.stop()
    assert time.monotonic() - begun < 1.0 and slow.stats.state == "stopped"
    assert 0 < slow.stats.events < len(recorded)

    with pytest.raises(FileNotFoundError):
        rl.capture_recording(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError):
        rl.capture_recording(path, speed=0)
