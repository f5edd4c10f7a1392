"""The stream under faults: 1006 drops, too-old revisions, expired watches, stalls. The state rebuilt from
the stream must equal the server's (whole objects as REST lists them, and the ids the simulator's world
holds, which does not depend on REST), no Steve revision inside the retained window may be missing, and
every gap must be in the stream."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from rancherlab.protocol.event import CONNECTED, DISCONNECTED, RESYNC_FINISHED, RESYNC_STARTED, Event
from rancherlab.protocol.steve import Watch
from rancherlab.simulator import Simulator
from rancherlab.stream import Stream

from ._stream_support import (
    FAST,
    SIM_FAST,
    TOKEN,
    busiest_project,
    churning,
    comparable,
    consume_during,
    ground_ids,
    ids_by_type,
    markers,
    rebuild,
    stream_for,
    truth,
)

pytestmark = pytest.mark.timeout(60)


def _run_with_churn(sim: Simulator, stream: Stream, churn_for: float, settle: float) -> list[Event]:
    """Collect while the world changes for `churn_for` s, then for `settle` s of quiet."""

    async def scenario(events: list[Event]) -> None:
        await asyncio.sleep(0.3)
        with churning(sim):
            await asyncio.sleep(churn_for)
        await asyncio.sleep(settle)

    events, _ = consume_during(stream, scenario, drain=False)
    return events


def _check_gaps_are_marked(events: list[Event]) -> None:
    """Every connection is framed: connected, then disconnected, alternating; frames only inside."""
    open_conn = None
    for e in events:
        if e.kind == "marker" and e.name == CONNECTED:
            assert open_conn is None
            open_conn = e.conn
        elif e.kind == "marker" and e.name == DISCONNECTED:
            assert open_conn == e.conn
            assert "connected_seconds" in e.info and "code" in e.info
            open_conn = None
        elif e.kind == "frame":
            assert open_conn == e.conn
    connected = markers(events, CONNECTED)
    assert all(c.info["gap_seconds"] is not None for c in connected[1:])


def _unequal(got: dict[Any, Any], want: dict[Any, Any]) -> list[Any]:
    keys = set(got) | set(want)
    return sorted(k for k in keys if got.get(k) != want.get(k))


def _check_state(events: list[Event], want: dict[tuple[str, str], Any], world: dict[str, set[str]]) -> None:
    """The rebuilt state equals REST's objects, and its ids per type equal the world's (not circular)."""
    state = rebuild(events)
    assert comparable(state) == comparable(want), _unequal(comparable(state), comparable(want))[:5]
    got = ids_by_type(state)
    assert world and all(world.values())
    assert got == world, {
        t: (sorted(got.get(t, set()) ^ world.get(t, set()))[:5])
        for t in set(got) | set(world)
        if got.get(t) != world.get(t)
    }


def test_norman_drops_rebuild_state() -> None:
    with Simulator(seed=5, rate=0, token=TOKEN, drop_every=0.6, **SIM_FAST) as sim:
        scope = f"project:{busiest_project(sim)}"
        stream = stream_for(sim, scope)  # every type the project offers, workload aggregate included
        events = _run_with_churn(sim, stream, churn_for=2.5, settle=1.5)
        want = truth(sim, scope, redactor=stream.redactor)  # the project's secrets arrive redacted
        world = ground_ids(sim, scope)
    drops = markers(events, DISCONNECTED)
    assert len(drops) >= 4 and all(d.info["code"] == 1006 for d in drops)
    _check_gaps_are_marked(events)
    assert len(markers(events, RESYNC_STARTED)) == len(markers(events, RESYNC_FINISHED)) >= 3
    assert any(e.kind == "resync" and e.info.get("resync") in ("changed", "appeared", "vanished") for e in events)
    assert {"namespacedSecret", "deployment", "pod"} <= set(world)
    _check_state(events, want, world)


@pytest.mark.parametrize("store", ["sql", "proxy"])
def test_steve_drops_resume_without_missing_a_revision(store: str) -> None:
    watches = (Watch("pod"), Watch("apps.deployment"), Watch("configmap", namespace="default"))
    with Simulator(seed=6, rate=0, token=TOKEN, drop_every=0.6, steve_store=store, **SIM_FAST) as sim:
        start = sim.world.revision
        stream = stream_for(sim, "steve", watches=watches)
        events = _run_with_churn(sim, stream, churn_for=2.5, settle=1.2)
        want = truth(sim, "steve", watches=watches, redactor=stream.redactor)
        world = ground_ids(sim, "steve", watches=watches)
        history = [
            c
            for c in sim.history()
            if c.revision > start
            and c.resource.cluster == "local"
            and (
                c.resource.kind in ("pod", "apps.deployment")
                or (c.resource.kind == "configmap" and c.resource.namespace == "default")
            )
        ]
    assert len(markers(events, DISCONNECTED)) >= 4
    _check_gaps_are_marked(events)
    seen = {e.revision for e in events if e.kind == "frame" and e.is_resource}
    missing = [c.revision for c in history if str(c.revision) not in seen]
    assert history and not missing, f"{len(missing)} of {len(history)} revisions missing"
    # resumed from the highest revision seen: reconnect subscriptions carry a revision
    sent = [e for e in events if e.kind == "sent"]
    assert len(sent) > len(watches) and all(e.revision for e in sent)
    assert set(world) == {w.type for w in watches}
    _check_state(events, want, world)


def test_steve_too_old_relists_and_recovers() -> None:
    with Simulator(seed=7, rate=0, token=TOKEN, steve_retain=3, **SIM_FAST) as sim:
        watches = (Watch("pod"), Watch("apps.replicaset"))
        stream = stream_for(sim, "steve", watches=watches)

        async def scenario(events: list[Event]) -> None:
            await asyncio.sleep(0.4)
            for _ in range(3):
                sim.drop_now()
                sim.step(40)  # far more than the 3 retained events per type happen in the gap
                await asyncio.sleep(0.8)

        events, _ = consume_during(stream, scenario)
        want = truth(sim, "steve", watches=watches, redactor=stream.redactor)
        world = ground_ids(sim, "steve", watches=watches)
    errors = [e for e in events if e.name == "resource.error"]
    assert errors and all("too old" in e.info["error"] for e in errors)
    finished = markers(events, RESYNC_FINISHED)
    assert finished and all(m.watch for m in finished)
    assert any(m.info["vanished"] or m.info["changed"] or m.info["appeared"] for m in finished)
    _check_state(events, want, world)


def test_steve_expired_watch_is_watched_again() -> None:
    watches = (Watch("pod"),)
    with Simulator(seed=8, rate=0, token=TOKEN, steve_store="proxy", watch_timeout=0.5, **SIM_FAST) as sim:
        start = sim.world.revision
        stream = stream_for(sim, "steve", watches=watches)
        events = _run_with_churn(sim, stream, churn_for=2.5, settle=0.7)
        want = truth(sim, "steve", watches=watches, redactor=stream.redactor)
        world = ground_ids(sim, "steve", watches=watches)
        history = [
            c
            for c in sim.history()
            if c.revision > start and c.resource.kind == "pod" and c.resource.cluster == "local"
        ]
    stops = [e for e in events if e.name == "resource.stop"]
    assert len(stops) >= 3
    assert len(markers(events, CONNECTED)) == 1  # the socket stays open; only the watch ends
    sent = [e for e in events if e.kind == "sent"]
    assert len(sent) == len(stops) + 1 and all(e.revision for e in sent)
    seen = {e.revision for e in events if e.kind == "frame" and e.is_resource}
    assert all(str(c.revision) in seen for c in history)
    _check_state(events, want, world)


@pytest.mark.parametrize("scope", ["global", "steve"])
def test_stall_is_detected_within_the_liveness_timeout(scope: str) -> None:
    options = replace(FAST, liveness=0.8)
    with Simulator(seed=9, rate=0, token=TOKEN, **SIM_FAST) as sim:
        stream = stream_for(sim, scope, types=["cluster"] if scope == "global" else ["pod"], options=options)

        async def scenario(events: list[Event]) -> float:
            await asyncio.sleep(0.6)
            stalled = time.monotonic()
            sim.stall()
            while not markers(events, DISCONNECTED) and time.monotonic() - stalled < 5:
                await asyncio.sleep(0.02)
            detected = time.monotonic() - stalled
            await asyncio.sleep(0.8)
            return detected

        events, detected = consume_during(stream, scenario)
    down = markers(events, DISCONNECTED)[0]
    assert down.info["liveness_timeout"] is True and "liveness" in down.info["reason"]
    assert detected < 0.8 + 0.2 + 0.5  # the timeout, one ping interval, and slack for a busy machine
    assert len(markers(events, CONNECTED)) >= 2
    after = [e for e in events if e.conn >= 2 and e.is_ping]
    assert after, "pings flow again on the new connection"


def test_restart_refused_then_back() -> None:
    with Simulator(seed=10, rate=0, token=TOKEN, **SIM_FAST) as sim:
        stream = stream_for(sim, "global", types=["cluster", "node"])

        async def scenario(events: list[Event]) -> None:
            await asyncio.sleep(0.4)
            worker = threading.Thread(target=sim.restart, kwargs={"down": 0.8})
            worker.start()
            await asyncio.sleep(0.2)
            sim.step(20)  # changes while the server is away are recovered by the resync
            await asyncio.to_thread(worker.join)
            await asyncio.sleep(1.5)

        events, _ = consume_during(stream, scenario)
        want = truth(sim, "global", types=("cluster", "node"), redactor=stream.redactor)
        world = {t: ids for t, ids in ground_ids(sim, "global").items() if t in ("cluster", "node")}
    connected = markers(events, CONNECTED)
    assert len(connected) >= 2 and connected[-1].info["attempts"] >= 2  # refused at least once while down
    assert connected[-1].info["gap_seconds"] >= 0.5
    _check_state(events, want, world)
