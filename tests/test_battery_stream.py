"""The reliability battery, stream side: a live stream against real loopback servers, for both dialects (a Norman
project scope and Steve pods/deployments), through every fault Rancher and the network in front of it produce,
and through hostile frames.

For each case: the stream goes on (or ends with an error that says what to do), the gap or anomaly is in the
stream as a marker, memory stays bounded (tracemalloc peak), nothing is lost (the state rebuilt from the events
equals what REST lists and the ids the simulator's world holds), and the stream's loop never runs a callback for
0.1 s of CPU time (asyncio debug mode; a loop that spins on some input shows as a slow callback; a warning for a
thread that was only descheduled on a busy machine does not fail, see `_battery_support.slow_callbacks`).

Each case prints one `battery:` line with what it measured; the README's reliability table quotes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import rancherlab as rl
from rancherlab import _loop
from rancherlab.errors import UpgradeRefusedError
from rancherlab.protocol import norman, steve
from rancherlab.protocol.event import (
    ANOMALY,
    CONNECTED,
    DISCONNECTED,
    RESYNC_FINISHED,
    Dialect,
    Event,
)
from rancherlab.protocol.steve import Watch
from rancherlab.recording import read_recording
from rancherlab.simulator import Simulator
from rancherlab.stream import Stream, StreamOptions

from ._battery_support import (
    SLOW_CALLBACK,
    BatteryRun,
    IdleCutter,
    Relay,
    connections,
    count,
    framing_errors,
    login_page,
    run_battery,
    slow_callbacks,
    wait_for,
)
from ._stream_support import (
    FAST,
    TOKEN,
    achurning,
    busiest_project,
    comparable,
    ground_ids,
    ids_by_type,
    rebuild,
    truth,
)

pytestmark = pytest.mark.timeout(60)

# Short intervals: liveness 1 s, WebSocket pings every 0.3 s, the simulator's application pings every 0.2 s.
OPTIONS = replace(FAST, liveness=1.0, ws_ping_interval=0.3, ws_ping_timeout=1.0, max_frame_bytes=1_000_000)
SIM: dict[str, Any] = {"norman_ping": 0.2, "steve_ping": 0.2, "rate": 0, "token": TOKEN}
STEVE_WATCHES = (Watch("pod"), Watch("apps.deployment"))
NORMAN_TYPES = ("pod", "deployment", "replicaSet", "configMap")  # what the simulator's churn changes most
DIALECTS = ("norman", "steve")
# tracemalloc peak of a whole case, from the start of the stream (the stream, the simulator's changes and
# formatting, the proxies, the test's own events list); the cases measure 1-10 MB, the huge frame included. A stream
# that kept what it should drop (the frames of dead connections, a buffer per reconnect) would exceed it.
MEMORY_BOUND = 30_000_000


# --- plumbing ------------------------------------------------------------------------------------------------


def scope_of(sim: Simulator, dialect: Dialect) -> tuple[str, tuple[Watch, ...]]:
    if dialect == "norman":
        return f"project:{busiest_project(sim)}", ()
    return "steve", STEVE_WATCHES


def open_stream(
    sim: Simulator, dialect: Dialect, *, url: str | None = None, options: StreamOptions = OPTIONS
) -> tuple[Stream, str, tuple[Watch, ...]]:
    scope, watches = scope_of(sim, dialect)
    types = NORMAN_TYPES if dialect == "norman" else ()
    stream = Stream(
        url or sim.url,
        scope,
        types=types,
        watches=watches,
        credentials=sim.token,
        options=options,
        env={},
        cli_config=False,
    )
    return stream, scope, watches


def churn(sim: Simulator, *, per_tick: int = 2, every: float = 0.05) -> contextlib.AbstractAsyncContextManager[object]:
    """Change the world from a thread while the block runs; joined without blocking the loop under test."""
    return achurning(sim, per_tick=per_tick, every=every)


async def settle(events: list[Event], seconds: float = 0.6) -> None:
    """Let what is in flight arrive: the last connection has brought a frame, then a quiet moment."""
    await wait_for(events, connections(1))
    await asyncio.sleep(seconds)


def report(case: str, dialect: str, run: BatteryRun, lost: int, **extra: Any) -> None:
    figures = {
        "connections": count(run.events, CONNECTED),
        "disconnects": count(run.events, DISCONNECTED),
        "anomalies": count(run.events, ANOMALY),
        "resyncs": count(run.events, RESYNC_FINISHED),
        "lost": lost,
        "peak_MB": round(run.peak_mb, 1),
        "longest_callback_ms": round(run.loop.max_cpu * 1000),
        "slow_warnings_preempted": len(run.loop.warnings) - len(run.loop.slow),
        **extra,
    }
    print(f"battery: {case} [{dialect}] " + " ".join(f"{k}={v}" for k, v in figures.items()))


def check_whole(
    run: BatteryRun,
    sim: Simulator,
    stream: Stream,
    scope: str,
    watches: tuple[Watch, ...],
    case: str,
    *,
    ignore: frozenset[tuple[str, str]] = frozenset(),
    via: str | None = None,
    **extra: Any,
) -> None:
    """The stream went on, every connection is framed, nothing is lost, memory and the loop stayed in bounds.

    `via`: the URL the stream used, when not the simulator's (objects carry links to the host they were asked at).
    """
    assert not run.slow, f"the stream's loop blocked for more than {SLOW_CALLBACK} s: {run.slow[:3]}"
    assert run.error is None, f"the stream ended: {run.error!r}"
    assert not framing_errors(run.events), framing_errors(run.events)[:5]
    server = sim if via is None else cast(Simulator, _At(via, sim.token))
    want = comparable(truth(server, scope, types=stream.types, watches=watches, redactor=stream.redactor))
    state = {k: v for k, v in comparable(rebuild(run.events)).items() if k not in ignore}
    unequal = sorted(k for k in set(state) | set(want) if state.get(k) != want.get(k))
    report(case, stream.dialect, run, len(unequal), **extra)
    assert not unequal, f"{len(unequal)} objects differ from the server's, e.g. {unequal[:5]}"
    world = {
        t: ids for t, ids in ground_ids(sim, scope, watches=watches).items() if not stream.types or t in stream.types
    }
    assert world and ids_by_type(state) == world, "the rebuilt ids differ from the simulator's world"
    assert run.peak_bytes < MEMORY_BOUND, f"tracemalloc peak {run.peak_mb:.1f} MB"


@dataclass(frozen=True)
class _At:
    """The simulator's REST as seen through a proxy: what `truth` needs of a simulator."""

    url: str
    token: str


def disconnects(events: list[Event]) -> list[Event]:
    return [e for e in events if e.kind == "marker" and e.name == DISCONNECTED]


# --- faults from the server and the network --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_drop_without_close_frame(dialect: Dialect) -> None:
    with Simulator(seed=21, **SIM) as sim:
        stream, scope, watches = open_stream(sim, dialect)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            async with churn(sim):
                for n in (2, 3):
                    await asyncio.sleep(0.3)
                    await asyncio.to_thread(sim.drop_now)
                    await wait_for(events, connections(n))
            await settle(events)

        run = run_battery(stream, scenario)
        check_whole(run, sim, stream, scope, watches, "drop (1006)")
    drops = disconnects(run.events)
    assert len(drops) >= 2 and all(d.info["code"] == 1006 for d in drops)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_clean_close(dialect: Dialect) -> None:
    with Simulator(seed=22, **SIM) as sim, Relay(sim.url) as relay:
        stream, scope, watches = open_stream(sim, dialect, url=relay.url)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            async with churn(sim):
                for n in (2, 3):
                    await asyncio.sleep(0.3)
                    await relay.close_all(1000, "going away for maintenance")
                    await wait_for(events, connections(n))
            await settle(events)

        run = run_battery(stream, scenario)
        check_whole(run, sim, stream, scope, watches, "clean close (1000)")
    closes = disconnects(run.events)
    assert len(closes) >= 2 and all(c.info["code"] == 1000 for c in closes)
    assert closes[0].info["reason"] == "going away for maintenance"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stall_fires_liveness(dialect: Dialect) -> None:
    with Simulator(seed=23, **SIM) as sim:
        stream, scope, watches = open_stream(sim, dialect)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            async with churn(sim):
                await asyncio.to_thread(sim.stall)  # silence, TCP open: only the liveness timeout can tell
                await wait_for(events, connections(2), timeout=6)
            await settle(events)

        run = run_battery(stream, scenario)
        check_whole(run, sim, stream, scope, watches, "stall")
    down = disconnects(run.events)[0]
    assert down.info["liveness_timeout"] is True and "liveness" in down.info["reason"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_server_restart(dialect: Dialect) -> None:
    with Simulator(seed=24, **SIM) as sim:
        stream, scope, watches = open_stream(sim, dialect)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            restart = asyncio.ensure_future(asyncio.to_thread(sim.restart, 2.0))  # the port is back after 2 s
            await asyncio.sleep(0.3)
            await asyncio.to_thread(sim.step, 25)  # changes while the server is away come back by the resync
            await restart
            await wait_for(events, connections(2), timeout=6)
            await settle(events)

        run = run_battery(stream, scenario)
        check_whole(run, sim, stream, scope, watches, "restart (2 s down)")
    back = [e for e in run.events if e.kind == "marker" and e.name == CONNECTED][-1]
    assert back.info["attempts"] >= 2 and back.info["gap_seconds"] >= 1.5  # refused while down, then back


@pytest.mark.parametrize("dialect", DIALECTS)
def test_slow_consumer_drop(dialect: Dialect) -> None:
    """A burst larger than the server's per-subscriber buffer: Norman drops the socket, Steve stops the watch."""
    with Simulator(seed=25, buffer=10, **SIM) as sim:
        stream, scope, watches = open_stream(sim, dialect)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            await asyncio.to_thread(sim.step, 300)  # hundreds of events at once into a 10-event buffer
            if dialect == "norman":
                await wait_for(events, connections(2))
            else:
                await wait_for(events, lambda ev: any(e.name == "resource.stop" for e in ev))
            await asyncio.to_thread(sim.step, 10)
            await settle(events, 1.0)

        run = run_battery(stream, scenario)
        stops = sum(1 for e in run.events if e.kind == "frame" and e.name == "resource.stop")
        check_whole(run, sim, stream, scope, watches, "slow-consumer drop", watch_stops=stops)
    if dialect == "steve":
        assert stops >= 1 and count(run.events, CONNECTED) == 1  # the watch ends, the socket stays
        assert sum(1 for e in run.events if e.kind == "sent") > len(STEVE_WATCHES)  # watched again
    else:
        assert disconnects(run.events)[0].info["code"] == 1006


@pytest.mark.parametrize("dialect", DIALECTS)
def test_watch_expiry(dialect: Dialect) -> None:
    """Steve's proxy store ends a watch with resource.stop; Norman's shared watch ends by closing every socket."""
    with Simulator(seed=26, steve_store="proxy", watch_timeout=0.6, **SIM) as sim:
        stream, scope, watches = open_stream(sim, dialect)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            async with churn(sim):
                await asyncio.sleep(2.0)
            await settle(events)

        run = run_battery(stream, scenario)
        stops = sum(1 for e in run.events if e.kind == "frame" and e.name == "resource.stop")
        check_whole(run, sim, stream, scope, watches, "watch expiry", watch_stops=stops)
    if dialect == "steve":
        assert stops >= 4 and count(run.events, CONNECTED) == 1
    else:
        assert count(run.events, DISCONNECTED) >= 2


@pytest.mark.parametrize("store", ["sql", "proxy"])
def test_too_old_on_resume(store: str) -> None:
    """Steve only: Norman never resumes from a revision (it re-lists after every gap, which the other cases test)."""
    with Simulator(seed=27, steve_store=store, steve_retain=3, **SIM) as sim:
        stream, scope, watches = open_stream(sim, "steve")

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            for n in (2, 3):
                await asyncio.to_thread(sim.drop_now)
                await asyncio.to_thread(sim.step, 40)  # far more than the 3 retained events per type
                await wait_for(events, connections(n))
            await settle(events)

        run = run_battery(stream, scenario)
        check_whole(run, sim, stream, scope, watches, f"too old on resume ({store} store)")
    errors = [e for e in run.events if e.name == "resource.error"]
    assert errors and all("too old" in e.info["error"] for e in errors)
    assert any(m.watch for m in run.events if m.kind == "marker" and m.name == RESYNC_FINISHED)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_proxy_that_cuts_idle_sockets(dialect: Dialect) -> None:
    """A load balancer cuts sockets idle for N s (30 s is common; 1.2 s here). Rancher's own pings may come less often
    (Steve: every 30 s; 2 s here), so the stream's WebSocket pings keep the socket busy; a client without them is cut.
    """
    idle = 1.2
    options = replace(OPTIONS, liveness=3.0)  # longer than the server's 2 s pings: only the proxy may cut
    with Simulator(seed=28, **{**SIM, "norman_ping": 2.0, "steve_ping": 2.0}) as sim, IdleCutter(sim.port, idle) as lb:
        stream, scope, watches = open_stream(sim, dialect, url=lb.url, options=options)
        subscribe = ("ws" + lb.url[4:]) + ("/v1/subscribe" if dialect == "steve" else "/v3/subscribe")

        async def bare_client() -> float:
            """The same upgrade without pings: the proxy cuts it after `idle` s of quiet (1006)."""
            loop = asyncio.get_running_loop()
            async with connect(
                subscribe, additional_headers={"Authorization": f"Bearer {sim.token}"}, ping_interval=None
            ) as ws:
                opened = loop.time()
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        await ws.recv()
                assert ws.close_code == 1006
                return loop.time() - opened

        async def scenario(events: list[Event]) -> float:
            await wait_for(events, connections(1))
            cut_after = await bare_client()
            await asyncio.sleep(2.5 - cut_after)
            await asyncio.to_thread(sim.step, 10)
            await settle(events, 0.5)
            return cut_after

        run = run_battery(stream, scenario)
        cuts = lb.cuts
        check_whole(run, sim, stream, scope, watches, f"idle-cutting proxy ({idle:g} s)", via=lb.url, proxy_cuts=cuts)
    assert cuts >= 1 and run.result >= idle  # the proxy does cut a socket nobody pings
    assert count(run.events, DISCONNECTED) == 0  # ... but not the stream's


@pytest.mark.parametrize("dialect", DIALECTS)
def test_login_page_instead_of_101_ends_with_what_to_do(dialect: Dialect, tmp_path: Path) -> None:
    """An authenticating proxy starts answering upgrades with its login page (200, HTML). Retrying cannot pass it:
    the capture ends with an error that names the cause and what to do, everything received is kept and recorded,
    and nothing spins meanwhile (the capture's own loop runs in debug mode here)."""
    path = tmp_path / "rec.jsonl"
    shared = _loop.shared().loop
    with Simulator(seed=29, **SIM) as sim, Relay(sim.url) as relay, slow_callbacks() as watch:
        scope, watches = scope_of(sim, dialect)
        shared.set_debug(True)
        shared.slow_callback_duration = SLOW_CALLBACK
        try:
            types = NORMAN_TYPES if dialect == "norman" else ()
            cap = rl.capture(
                relay.url,
                scope,
                types=types,
                watches=watches,
                credentials=sim.token,
                options=OPTIONS,
                record=path,
                env={},
            )
            deadline = 8.0
            while cap.stats.frames < 3 and deadline > 0:
                sim.step(2)
                deadline -= 0.1
                threading.Event().wait(0.1)
            asyncio.run(relay.answer_upgrades_with(login_page()))
            with pytest.raises(UpgradeRefusedError) as info:
                cap.wait(10)
        finally:
            shared.set_debug(False)
        attempts = relay.upgrades
    message = str(info.value)
    assert "HTTP 200" in message and "login page" in message
    assert "Connect by a route the proxy does not guard" in message  # what to do
    assert sim.token.split(":")[1] not in message
    assert cap.stats.state == "failed" and attempts == 2  # the refusal is final: no retry loop against a login page
    recording = read_recording(path)
    recorded = list(recording)
    assert recording.summary is not None and recording.summary.get("stopped_by") == "error"
    assert [e.seq for e in recorded] == [e.seq for e in cap.events]  # nothing received is lost
    assert not watch.slow, watch.slow[:3]
    print(
        f"battery: login page instead of 101 [{dialect}] events_kept={len(recorded)} upgrade_attempts={attempts} "
        f"error={type(info.value).__name__}"
    )


# --- hostile frames -----------------------------------------------------------------------------------------------

HUGE = '{"name":"ping","data":{"x":"' + "a" * 1_500_000 + '"}}'  # over the stream's 1 MB max_frame_bytes
BEYOND = '{"name":"ping","data":{"x":"' + "a" * 2_500_000 + '"}}'  # over what the socket takes (2 × max_frame_bytes)


def _hostile(dialect: Dialect) -> list[tuple[str, str | bytes, bool | None]]:
    """(label, message, must become an anomaly: True, must stay a frame: False, either: None)."""
    foreign = (
        # a Steve message on a Norman socket: its fields tell it apart
        steve.encode_event("resource.change", data={"id": "default/x", "type": "pod"}, revision="1", echo={})
        if dialect == "norman"
        # a Norman message on a Steve socket, of a type no watch covers: nothing in a frame tells the dialects apart
        # for sure (an older apiserver echoes no key), so it may be kept as a frame or flagged
        else norman.change_frame({"id": "c-zzzzz", "type": "cluster", "baseType": "cluster", "links": {}})
    )
    return [
        ("not JSON", "this is not JSON {", True),
        ("JSON, not an object", "[1, 2, 3]", True),
        ("empty", "", True),
        ("binary, not UTF-8", b"\xff\xfe\x00\x81rancher", True),
        ("binary JSON", b'{"name":"ping","data":{}}', False),
        ("NUL bytes in the text", '{"name":"resource.change\x00","data":{}}', True),
        ("NUL bytes only", "\x00" * 64, True),
        ("escaped NUL in a string", '{"name":"ping","data":{"x":"a\\u0000b"}}', False),
        ("unknown name", '{"name":"resource.frobnicate","data":{"type":"pod"}}', False),
        ("resource event without an object", '{"name":"resource.change","data":"nope"}', True),
        ("nested 200 deep", '{"name":"resource.change","data":' + "[" * 200 + "]" * 200 + "}", True),
        ("the other dialect's frame", foreign, True if dialect == "norman" else None),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_hostile_frames_become_anomalies_and_the_stream_goes_on(dialect: Dialect) -> None:
    hostile = _hostile(dialect)
    with Simulator(seed=30, **SIM) as sim, Relay(sim.url) as relay:
        stream, scope, watches = open_stream(sim, dialect, url=relay.url)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            async with churn(sim, per_tick=1, every=0.1):
                for _, message, _ in hostile:
                    assert await relay.inject(message) == 1
                    await asyncio.sleep(0.02)
                assert await relay.inject(HUGE) == 1  # kept as an anomaly, its beginning only
                await asyncio.sleep(0.3)
                assert await relay.inject(BEYOND) == 1  # the stream closes this connection (1009) and reconnects
                await wait_for(events, connections(2))
            await settle(events)

        run = run_battery(stream, scenario)
        foreign = frozenset({("cluster", "c-zzzzz")} if dialect == "steve" else ())
        check_whole(run, sim, stream, scope, watches, "hostile frames", ignore=foreign, tried=len(hostile) + 2)
    first = [e for e in run.events if e.conn == 1]
    anomalies = [e for e in first if e.kind == "marker" and e.name == ANOMALY]
    huge = [a for a in anomalies if a.info.get("truncated")]
    assert len(huge) == 1 and huge[0].info["bytes"] == len(HUGE) and "max_frame_bytes" in huge[0].info["error"]
    anomalies = [a for a in anomalies if a not in huge]
    must = sum(1 for *_, bad in hostile if bad)
    assert must <= len(anomalies) <= must + sum(1 for *_, bad in hostile if bad is None)
    assert all(a.info["error"] and a.raw is not None for a in anomalies)  # what was wrong, and the text kept
    for label, message, bad in hostile:
        if isinstance(message, str):
            kept = [e for e in first if e.raw == message]
            assert len(kept) == 1 and bad in (None, kept[0].name == ANOMALY), label
    too_big = disconnects(run.events)[0]
    assert too_big.info["code"] == 1009 and too_big.conn == 1  # the gap is in the stream, with its cause
    assert "over 2000000 bytes" in too_big.info["reason"] and "raise max_frame_bytes" in too_big.info["reason"]


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_deeply_nested_frame_becomes_an_anomaly(dialect: Dialect, depth: int) -> None:
    # needs the parser's nesting limit (issue 12 item 6)
    nested = '{"name":"resource.change","data":' + "[" * depth + "]" * depth + "}"
    with Simulator(seed=31, **SIM) as sim, Relay(sim.url) as relay:
        stream, scope, watches = open_stream(sim, dialect, url=relay.url)

        async def scenario(events: list[Event]) -> None:
            await wait_for(events, connections(1))
            async with churn(sim, per_tick=1, every=0.1):
                await asyncio.sleep(0.2)
                assert await relay.inject(nested) == 1
                await asyncio.sleep(0.5)  # good frames keep coming after it
            await settle(events)

        run = run_battery(stream, scenario)
        check_whole(run, sim, stream, scope, watches, f"nested {depth} deep")
    anomaly = [e for e in run.events if e.kind == "marker" and e.name == ANOMALY]
    assert len(anomaly) == 1 and anomaly[0].info["error"]  # what was wrong
    assert anomaly[0].raw is not None and anomaly[0].raw[:100] == nested[:100]  # and the text, kept
    after = [e for e in run.events if e.seq > anomaly[0].seq and e.kind == "frame"]
    assert after and count(run.events, DISCONNECTED) == 0  # the same connection goes on


def test_watches_that_match_nothing_leave_the_loop_idle() -> None:
    """Watches no object matches (a namespace that does not exist, an id that does not exist) must leave the loop
    waiting, not spinning (issue 12 item 5 is the servers' side of this): over 1.5 s of pings only, the loop's thread
    uses a small fraction of that in CPU time."""
    watches = (Watch("pod", namespace="no-such-namespace"), Watch("configmap", id="nowhere/nothing"))
    with Simulator(seed=32, **SIM) as sim:
        stream = Stream(
            sim.url, "steve", watches=watches, credentials=sim.token, options=OPTIONS, env={}, cli_config=False
        )

        async def scenario(events: list[Event]) -> float:
            await wait_for(events, lambda ev: sum(1 for e in ev if e.name == "resource.start") == len(watches))
            cpu = time.thread_time()
            await asyncio.sleep(1.5)
            return time.thread_time() - cpu

        run = run_battery(stream, scenario)
    assert not run.slow and run.error is None
    assert not [e for e in run.events if e.is_resource]
    assert sum(1 for e in run.events if e.is_ping) >= 3  # the connection is alive meanwhile
    assert run.result < 0.5, f"the loop used {run.result:.2f} s of CPU in 1.5 s of quiet"
    print(f"battery: watches matching nothing [steve] loop_cpu_ms_per_s={run.result / 1.5 * 1000:.0f} lost=0")
