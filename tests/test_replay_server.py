"""The replay server on the wire: recordings made from the simulator here, served back, checked with plain clients."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rancherlab.protocol import Event, auth, marker, norman, parse_frame, parse_sent, steve
from rancherlab.recording import RecordingHeader, RecordingWriter, read_recording
from rancherlab.replayserver import ReplayServer
from rancherlab.simulator import Simulator

from .conftest import SECRET_TOKEN, received_within

WAIT = 5.0
SERVER_VERSION = "v2.9.9-replay"
Key = tuple[str, str]


# --- recordings, made from the simulator with a plain websockets client --------------------------------


class _Recorder:
    """Stamps events like the live stream does (seq, conn, t since start, ts) and writes them."""

    def __init__(self, writer: RecordingWriter) -> None:
        self.writer = writer
        self.t0 = time.monotonic()
        self.seq = 0
        self.conn = 0

    def write(self, event: Event) -> None:
        self.seq += 1
        self.writer.write(
            event.stamped(seq=self.seq, conn=self.conn, t=round(time.monotonic() - self.t0, 6), ts=datetime.now(UTC))
        )

    async def frames(self, ws: ClientConnection, dialect: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                return
            self.write(parse_frame(raw, dialect))  # type: ignore[arg-type]


def _snapshot(rec: _Recorder, dialect: str, items: list[dict[str, Any]]) -> None:
    for obj in sorted(items, key=lambda o: o["id"]):
        rv = (obj.get("metadata") or {}).get("resourceVersion") if dialect == "steve" else None
        rec.write(
            Event(
                0,
                0,
                0.0,
                None,
                dialect,
                "snapshot",
                "resource.create",
                type=obj["type"],  # type: ignore[arg-type]
                id=obj["id"],
                revision=rv,
                data=obj,
            )
        )


def record_norman(path: Path) -> Path:
    """A project-scope Norman recording: a REST snapshot, frames with pings, one 1006 drop, a reconnect."""
    with Simulator(seed=3, token=SECRET_TOKEN, rate=30, norman_ping=0.25) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]
        url = sim.url.replace("http", "ws", 1) + f"/v3/projects/{project}/subscribe"
        header = RecordingHeader.from_url(
            url, redaction={"enabled": False}, server_version=SERVER_VERSION, synthetic=True
        )
        auth_headers = {"Authorization": f"Bearer {SECRET_TOKEN}"}

        async def go(writer: RecordingWriter) -> None:
            rec = _Recorder(writer)
            pods = f"{sim.url}/v3/project/{project}/pods"
            listed = (await asyncio.to_thread(httpx.get, pods, headers=auth_headers)).json()["data"]
            _snapshot(rec, "norman", listed)
            for seconds, drop in ((1.0, True), (0.6, False)):
                rec.conn += 1
                async with connect(url, additional_headers=auth_headers) as ws:
                    rec.write(marker("connected", "norman", endpoint=header.endpoint))
                    await rec.frames(ws, "norman", seconds)
                    if drop:
                        sim.drop_now()
                        with pytest.raises(ConnectionClosed):
                            while True:
                                rec.write(parse_frame(await asyncio.wait_for(ws.recv(), WAIT), "norman"))
                        rec.write(marker("disconnected", "norman", code=1006, reason=""))
                        await asyncio.sleep(0.2)
                    else:
                        rec.write(marker("disconnected", "norman", code=1000, reason=""))

        with RecordingWriter(path, header) as writer:
            asyncio.run(go(writer))
    return path


def record_steve(path: Path) -> Path:
    """A Steve recording: pods listed then watched from the list's revision (by plural), namespaces watched fresh."""
    with Simulator(seed=5, token=SECRET_TOKEN, rate=30, steve_ping=0.3, server_version=SERVER_VERSION) as sim:
        url = sim.url.replace("http", "ws", 1) + "/v1/subscribe"
        header = RecordingHeader.from_url(url, redaction={"enabled": False}, synthetic=True)  # version from pings
        cookie = {"Cookie": f"R_SESS={SECRET_TOKEN}"}

        async def go(writer: RecordingWriter) -> None:
            rec = _Recorder(writer)
            body = (await asyncio.to_thread(httpx.get, f"{sim.url}/v1/pods", headers=cookie)).json()
            _snapshot(rec, "steve", body.get("data", []))
            rec.conn = 1
            async with connect(url, additional_headers=cookie) as ws:
                rec.write(marker("connected", "steve", endpoint="/v1/subscribe"))
                for message in (
                    f'{{"resourceType":"pods","resourceVersion":"{body["revision"]}"}}',
                    '{"resourceType":"namespace"}',
                ):
                    rec.write(parse_sent(message, "steve"))
                    await ws.send(message)
                await rec.frames(ws, "steve", 1.5)
            rec.write(marker("disconnected", "steve", code=1000, reason=""))

        with RecordingWriter(path, header) as writer:
            asyncio.run(go(writer))
    return path


@pytest.fixture(scope="session")
def norman_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_norman(tmp_path_factory.mktemp("rec") / "norman.jsonl")


@pytest.fixture(scope="session")
def steve_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_steve(tmp_path_factory.mktemp("rec") / "steve.jsonl.gz")


def events(path: Path) -> list[Event]:
    return list(read_recording(path))


def resource_frames(path: Path) -> list[Event]:
    return [e for e in events(path) if e.kind == "frame" and not e.is_ping]


def final_state(path: Path, types: set[str] | None = None, upto: float | None = None) -> dict[Key, dict[str, Any]]:
    """The recording's state, folded here independently of the server: snapshot, then every change (up to
    `upto` seconds after the recording's first event, when given)."""
    state: dict[Key, dict[str, Any]] = {}
    evs = events(path)
    for e in evs:
        if upto is not None and e.t - evs[0].t > upto:
            break
        if not e.is_resource or e.type is None or e.id is None or (types and e.type not in types):
            continue
        gone = e.name == "resource.remove" or (
            e.dialect == "norman" and e.data.get("state") in ("removed", "purging", "purged")
        )
        if gone:
            state.pop((e.type, e.id), None)
        else:
            state[(e.type, e.id)] = e.data
    return state


def ws_url(server: ReplayServer, path: str | None = None) -> str:
    return server.endpoint_url if path is None else server.url.replace("http", "ws", 1) + path


async def receive(conn: ClientConnection, n: int, *, skip_pings: bool = True, timeout: float = 10.0) -> list[str]:
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        raw = await asyncio.wait_for(conn.recv(), deadline - time.monotonic())
        assert isinstance(raw, str), "Rancher sends text frames only"
        if skip_pings and json.loads(raw).get("name") == "ping":
            continue
        out.append(raw)
    return out


# --- Norman -------------------------------------------------------------------------------------------


def test_the_recordings_hold_what_the_tests_rely_on(norman_recording, steve_recording):
    n = events(norman_recording)
    assert {e.kind for e in n} >= {"snapshot", "frame", "marker"}
    assert any(e.is_ping for e in n) and sum(1 for e in n if e.name == "disconnected") == 2
    assert sum(1 for e in n if e.name == "resource.change") > 10
    s = events(steve_recording)
    assert any(e.kind == "sent" for e in s) and any(e.is_ping for e in s)
    assert sum(1 for e in s if e.kind == "frame" and e.name in ("resource.create", "resource.change")) > 10


def test_norman_frames_byte_for_byte_at_the_recorded_pace(norman_recording):
    recorded = resource_frames(norman_recording)
    first_t = events(norman_recording)[0].t
    span = recorded[-1].t - first_t
    speed = 2.0
    with ReplayServer(norman_recording, speed=speed, norman_ping=60) as server:
        assert server.script.path == server.endpoint_url.split(str(server.port), 1)[1].split("?")[0].replace(
            "/projects/", "/project/"
        )

        async def go() -> tuple[list[str], float]:
            async with connect(ws_url(server)) as conn:  # no --token: no credential needed
                assert conn.protocol.extensions == []
                began = time.monotonic()
                got = await receive(conn, len(recorded), skip_pings=False)
                elapsed = time.monotonic() - began
                assert (
                    await received_within(conn, 0.3) == []
                )  # nothing more: recorded pings and snapshots are not frames
                return got, elapsed

        got, elapsed = asyncio.run(go())
    assert got == [e.raw for e in recorded]
    assert norman.PING not in got
    assert span / speed * 0.7 - 0.05 <= elapsed <= span / speed * 1.3 + 0.3, (elapsed, span / speed)


def test_norman_own_pings_and_the_socket_stays_open_at_the_end(norman_recording):
    n = len(resource_frames(norman_recording))
    with ReplayServer(norman_recording, speed=50, norman_ping=0.15) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                await receive(conn, n)
                return await received_within(conn, 0.7)

        after = asyncio.run(go())
    assert len(after) >= 3 and set(after) == {norman.PING}


def test_norman_loop_starts_over(norman_recording):
    raws = [e.raw for e in resource_frames(norman_recording)]
    with ReplayServer(norman_recording, speed=20, loop=True, norman_ping=60) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                return await receive(conn, 2 * len(raws) + 1)

        got = asyncio.run(go())
    assert got == raws + raws + raws[:1]


def test_each_client_gets_its_own_replay_from_the_start(norman_recording):
    raws = [e.raw for e in resource_frames(norman_recording)]
    with ReplayServer(norman_recording, speed=20, norman_ping=60) as server:

        async def go() -> tuple[list[str], list[str]]:
            async with connect(ws_url(server)) as first:
                one = await receive(first, len(raws))
                async with connect(ws_url(server)) as second:
                    return one, await receive(second, len(raws))

        one, two = asyncio.run(go())
    assert one == two == raws


def test_reproduce_drops_closes_without_close_frame_where_recorded(norman_recording):
    evs = events(norman_recording)
    drop = next(i for i, e in enumerate(evs) if e.name == "disconnected")
    before = [e.raw for e in evs[:drop] if e.kind == "frame" and not e.is_ping]
    with ReplayServer(norman_recording, speed=10, reproduce_drops=True, norman_ping=60) as server:

        async def go() -> tuple[list[str], ConnectionClosed]:
            got: list[str] = []
            async with connect(ws_url(server)) as conn:
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        got.append(await asyncio.wait_for(conn.recv(), WAIT))
                return got, info.value

        got, closed = asyncio.run(go())
    assert got == before
    assert closed.rcvd is None and closed.sent is None  # no close frame: the client sees 1006


def test_norman_resource_types_filter_and_404(norman_recording):
    recorded = resource_frames(norman_recording)
    pods = [e.raw for e in recorded if e.type == "pod"]
    assert pods and len(pods) < len(recorded)
    with ReplayServer(norman_recording, speed=50, norman_ping=60) as server:
        base = ws_url(server).split("?")[0]

        async def go() -> list[str]:
            async with connect(base + "?resourceTypes=pod&sockId=2") as conn:
                return await receive(conn, len(pods))

        assert asyncio.run(go()) == pods
        response = asyncio.run(refused(base + "?resourceTypes=nosuchtype"))
        assert (response.status_code, response.body.decode()) == (404, norman.NO_TYPES_BODY)


def test_norman_list_then_watch_ends_with_the_recordings_final_state(norman_recording):
    recorded = resource_frames(norman_recording)
    types = {e.type for e in recorded if e.type}
    with ReplayServer(norman_recording, speed=4, norman_ping=60) as server:
        project_path = server.script.path[: -len("/subscribe")]  # /v3/project/<c:p>
        time.sleep(0.2)
        assert 0.5 < server.position() < 3
        state: dict[Key, dict[str, Any]] = {}
        for typ in sorted(types):
            body = httpx.get(f"{server.url}{project_path}/{typ.lower()}s").json()
            assert body["type"] == "collection" and body["resourceType"] == typ
            assert set(body) >= {"type", "resourceType", "data", "pagination"}
            state.update({(o["type"], o["id"]): o for o in body["data"]})
        # the plural form of the scope path answers too
        assert httpx.get(f"{server.url}{project_path.replace('/project/', '/projects/')}/pods").status_code == 200

        async def go() -> None:
            async with connect(ws_url(server)) as conn:
                for raw in await receive(conn, len(recorded)):
                    doc = json.loads(raw)
                    obj = doc["data"]
                    if doc["name"] == "resource.remove" or obj.get("state") in ("removed", "purging", "purged"):
                        state.pop((obj["type"], obj["id"]), None)
                    else:
                        state[(obj["type"], obj["id"])] = obj

        asyncio.run(go())
        # at the end, REST agrees too
        time.sleep(max(0.0, (recorded[-1].t - events(norman_recording)[0].t) / 4 - server.position() / 4) + 0.2)
        listed = httpx.get(f"{server.url}{project_path}/pods").json()["data"]
    truth = final_state(norman_recording, types)
    assert state == truth
    assert {o["id"]: o for o in listed} == {k[1]: v for k, v in truth.items() if k[0] == "pod"}


PROJECT_URL = "wss://rancher.example/v3/projects/c-abc12:p-xyz34/subscribe"


def _pod(name: str, state: str = "running") -> dict[str, Any]:
    self_url = f"https://rancher.example/v3/project/c-abc12:p-xyz34/pods/default:{name}"
    return {
        "id": f"default:{name}",
        "type": "pod",
        "baseType": "pod",
        "name": name,
        "namespaceId": "default",
        "state": state,
        "links": {"self": self_url, "remove": self_url, "update": self_url},
    }


def _deployment(scale: int, via: str) -> dict[str, Any]:
    """A deployment as the `deployment` stream (`via="deployments"`) or the `workload` stream sends it."""
    self_url = f"https://rancher.example/v3/project/c-abc12:p-xyz34/{via}/deployment:default:web"
    return {
        "id": "deployment:default:web",
        "type": "deployment",
        "baseType": "workload",
        "name": "web",
        "namespaceId": "default",
        "state": "active",
        "scale": scale,
        "links": {"self": self_url, "update": self_url},
        "actions": {"pause": self_url + "?action=pause"},
    }


def record_timeline(path: Path) -> tuple[Path, list[float]]:
    """A Norman recording with a known timeline: a snapshot, then state changes at whole seconds 1…8
    (a change, a remove, the double delivery, a create, a removed state, a drop whose resync finds a pod
    gone, a create), stamped from t=100 so only times relative to the first event can serve it right."""
    header = RecordingHeader.from_url(PROJECT_URL, redaction={"enabled": False}, synthetic=True)
    plan: list[tuple[float, Event]] = [
        (0.0, _snapshot_event(o)) for o in (_pod("a"), _pod("b"), _pod("c"), _deployment(1, "workloads"))
    ]
    plan.append((0.0, marker("connected", "norman", endpoint=PROJECT_URL)))

    def frame(t: float, obj: dict[str, Any], name: str = "resource.change") -> None:
        plan.append((t, parse_frame(norman.resource_frame(name, obj), "norman")))

    frame(1.0, _pod("a", "updating"))
    frame(2.0, _pod("b"), "resource.remove")
    frame(3.0, _deployment(2, "deployments"))
    frame(3.0, _deployment(2, "workloads"))
    frame(4.0, _pod("d"))
    frame(5.0, _pod("c", "removed"))  # Norman's "going away" state: not listed any more
    plan.append((6.0, marker("disconnected", "norman", code=1006, reason="")))
    plan.append((6.5, marker("connected", "norman", endpoint=PROJECT_URL)))
    plan.append((6.5, marker("resync.started", "norman", types=["pod", "deployment"])))
    for obj, name in (
        (_pod("a", "updating"), "resource.change"),
        (_deployment(2, "workloads"), "resource.change"),
        (_pod("d"), "resource.remove"),
    ):  # d vanished while we were away
        e = parse_frame(norman.resource_frame(name, obj), "norman")
        plan.append(
            (7.0, Event(0, 0, 0.0, None, "norman", "resync", name, type=e.type, id=e.id, raw=e.raw, data=e.data))
        )
    plan.append((7.0, marker("resync.finished", "norman", types=["pod", "deployment"])))
    frame(8.0, _pod("e"))
    with RecordingWriter(path, header) as writer:
        for seq, (t, e) in enumerate(plan, 1):
            writer.write(e.stamped(seq=seq, conn=2 if t > 6 else 1, t=100.0 + t, ts=datetime.now(UTC)))
    return path, sorted({t for t, e in plan if e.is_resource and e.kind != "snapshot"})


def _snapshot_event(obj: dict[str, Any]) -> Event:
    return Event(0, 0, 0.0, None, "norman", "snapshot", "resource.create", type=obj["type"], id=obj["id"], data=obj)


def _listed(server: ReplayServer, client: httpx.Client) -> tuple[float, dict[Key, dict[str, Any]], float]:
    """The pods and deployments the REST lists hold, with the replay position before and after asking."""
    scope = server.script.path[: -len("/subscribe")]
    before = server.position()
    out: dict[Key, dict[str, Any]] = {}
    for plural in ("pods", "deployments"):
        out.update({(o["type"], o["id"]): o for o in client.get(f"{server.url}{scope}/{plural}").json()["data"]})
    return before, out, server.position()


def test_norman_rest_lists_the_recorded_state_at_the_replay_position(tmp_path: Path) -> None:
    """List-then-watch needs the list taken at the replay clock: mid-recording it is the snapshot plus every
    change up to that position (removes, removed states and resync vanishings honoured), never the end state."""
    path, changes = record_timeline(tmp_path / "timeline.jsonl")
    snapshot = {(e.type, e.id): e.data for e in events(path) if e.kind == "snapshot"}
    final = final_state(path)
    assert set(final) == {("pod", "default:a"), ("pod", "default:e"), ("deployment", "deployment:default:web")}
    with ReplayServer(path, speed=4, norman_ping=60) as server, httpx.Client() as client:  # one client: quick lists
        start, listed, _ = _listed(server, client)
        assert start < changes[0] and listed == snapshot
        middles = []
        for target in [*(k + 0.5 for k in range(int(changes[-1]))), changes[-1]]:
            while server.position() < target:
                time.sleep(0.01)
            before, listed, after = _listed(server, client)
            if [t for t in changes if before < t <= after]:
                continue  # a change fell between the two lists: no single position to compare with
            assert listed == final_state(path, upto=before), f"at {before:.2f}"
            if snapshot != listed != final:
                middles.append(before)
    assert len(middles) >= 5  # the lists really were taken mid-recording, at distinct states
    assert listed == final


def test_norman_rest_by_id_filters_and_unknown_plural(norman_recording):
    with ReplayServer(norman_recording, speed=1000, norman_ping=60) as server:
        time.sleep(0.1)
        scope = server.script.path[: -len("/subscribe")]
        pods = httpx.get(f"{server.url}{scope}/pods").json()["data"]
        assert pods
        one = pods[0]
        assert httpx.get(f"{server.url}{scope}/pods/{one['id']}").json() == one
        same_ns = httpx.get(f"{server.url}{scope}/pods", params={"namespaceId": one["namespaceId"]}).json()["data"]
        assert same_ns and all(p["namespaceId"] == one["namespaceId"] for p in same_ns)
        assert httpx.get(f"{server.url}{scope}/nosuchthings").status_code == 404
        assert httpx.get(f"{server.url}/v3/nosuchthings").status_code == 404


SAMPLES_DIR = Path(__file__).resolve().parents[1] / "recordings" / "samples"


@pytest.mark.parametrize("sample", sorted(SAMPLES_DIR.glob("*.jsonl*")), ids=lambda p: p.name)
def test_committed_samples_are_served_byte_for_byte(sample):
    """Drops, resyncs, subtypes under `resourceTypes=workload`, a downstream Steve: each watch's frames come back."""
    evs = events(sample)
    stream = ("resource.create", "resource.change", "resource.remove", "resource.changes")
    with ReplayServer(sample, speed=50, norman_ping=60, steve_ping=60) as server:
        if server.script.dialect == "norman":
            expected = [e.raw for e in evs if e.kind == "frame" and not e.is_ping]

            async def norman_go() -> list[str]:
                async with connect(ws_url(server)) as conn:
                    return await receive(conn, len(expected))

            assert asyncio.run(norman_go()) == expected
            return
        messages: dict[str, str] = {}
        for e in evs:
            if e.kind == "sent" and e.name == "subscribe":
                messages.setdefault(
                    steve.subscription_key(e.watch or {}),
                    json.dumps({k: v for k, v in e.data.items() if k != "resourceVersion"}),
                )
        wanted = [e for e in evs if e.kind == "frame" and e.name in stream]

        async def steve_go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                for message in messages.values():
                    await conn.send(message)
                return await receive(conn, len(messages) + len(wanted))

        got = asyncio.run(steve_go())
    by_key: dict[str, list[str]] = {}
    for raw in got:
        doc = json.loads(raw)
        if doc["name"] in stream:
            by_key.setdefault(steve.subscription_key(doc), []).append(raw)
    recorded: dict[str, list[str]] = {}
    for e in wanted:
        recorded.setdefault(steve.subscription_key(e.watch or {}), []).append(e.raw or "")
    assert by_key == recorded


def test_steve_reproduce_drops_closes_the_socket_where_recorded():
    sample = SAMPLES_DIR / "steve-cluster.jsonl"
    if not sample.exists():
        pytest.skip("the committed Steve sample with a drop is not here")
    evs = events(sample)
    first = next(e for e in evs if e.kind == "sent")
    drop = next(e for e in evs if e.name == "disconnected")
    speed = 10.0
    with ReplayServer(sample, speed=speed, reproduce_drops=True, steve_ping=60) as server:

        async def go() -> tuple[float, ConnectionClosed]:
            async with connect(ws_url(server)) as conn:
                await conn.send(json.dumps({"resourceType": first.type}))
                began = time.monotonic()
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await asyncio.wait_for(conn.recv(), WAIT)
                return time.monotonic() - began, info.value

        elapsed, closed = asyncio.run(go())
    assert closed.rcvd is None and closed.sent is None
    expected = (drop.t - first.t) / speed
    assert expected * 0.7 - 0.05 <= elapsed <= expected * 1.3 + 0.3, (elapsed, expected)


# --- Steve --------------------------------------------------------------------------------------------


def recorded_watch(path: Path, resource_type: str) -> tuple[Event, list[Event]]:
    """The recorded subscribe message of a watch and its frames (by echoed key)."""
    evs = events(path)
    sent = next(e for e in evs if e.kind == "sent" and e.type == resource_type)
    key = steve.subscription_key(sent.watch or {})
    frames = [
        e
        for e in evs
        if e.kind == "frame"
        and e.name in ("resource.create", "resource.change", "resource.remove")
        and e.watch
        and steve.subscription_key(e.watch) == key
    ]
    return sent, frames


def test_steve_matching_watch_gets_start_then_its_frames_byte_for_byte_and_timed(steve_recording):
    sent, frames = recorded_watch(steve_recording, "pods")
    assert len(frames) > 5
    span = frames[-1].t - sent.t
    speed = 2.0
    with ReplayServer(steve_recording, speed=speed, steve_ping=60) as server:

        async def go() -> tuple[list[str], float]:
            async with connect(ws_url(server)) as conn:
                await conn.send('{"resourceType":"pods"}')
                began = time.monotonic()
                got = await receive(conn, 1 + len(frames))
                return got, time.monotonic() - began

        got, elapsed = asyncio.run(go())
    assert got[0] == steve.encode_event("resource.start", data=steve.SUBSCRIBE_DATA, echo={"resourceType": "pods"})
    assert got[1:] == [e.raw for e in frames]
    assert span / speed * 0.7 - 0.05 <= elapsed <= span / speed * 1.3 + 0.3, (elapsed, span / speed)


def test_steve_resume_from_a_revision_skips_frames_at_or_below_it(steve_recording):
    _, frames = recorded_watch(steve_recording, "pods")
    cut = frames[len(frames) // 2]
    assert cut.revision is not None
    after = [e.raw for e in frames if int(e.revision or 0) > int(cut.revision)]
    assert 0 < len(after) < len(frames)
    with ReplayServer(steve_recording, speed=20, steve_ping=60) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                await conn.send(json.dumps({"resourceType": "pods", "resourceVersion": cut.revision}))
                got = await receive(conn, 1 + len(after))
                return got + await received_within(conn, 0.3)

        got = asyncio.run(go())
    assert json.loads(got[0])["name"] == "resource.start"
    assert got[1:] == after


def test_steve_watch_loops_with_the_recording(steve_recording):
    _, frames = recorded_watch(steve_recording, "pods")
    raws = [e.raw for e in frames]
    with ReplayServer(steve_recording, speed=20, loop=True, steve_ping=60) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                await conn.send('{"resourceType":"pods"}')
                return await receive(conn, 1 + 2 * len(raws))

        got = asyncio.run(go())
    assert got[1:] == raws + raws


def test_steve_unknown_type_is_refused_as_rancher_does(steve_recording):
    with ReplayServer(steve_recording, speed=20, steve_ping=60) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                await conn.send('{"resourceType":"nosuchtype","namespace":"default"}')
                return await receive(conn, 2) + await received_within(conn, 0.2)

        got = asyncio.run(go())
    echo = {"resourceType": "nosuchtype", "namespace": "default"}
    assert got == [
        steve.error_event("failed to find schema nosuchtype", echo),
        steve.encode_event("resource.stop", data=steve.SUBSCRIBE_DATA, echo=echo),
    ]


def test_steve_exact_key_stop_gets_exactly_one_stop(steve_recording):
    with ReplayServer(steve_recording, speed=1, steve_ping=60) as server:

        async def go() -> list[dict[str, Any]]:
            async with connect(ws_url(server)) as conn:
                await conn.send('{"resourceType":"namespace"}')
                await conn.send('{"resourceType":"namespace"}')  # an active key again: ignored
                await conn.send('{"resourceType":"namespace","namespace":"x","stop":true}')  # not the key
                await conn.send('{"resourceType":"namespace","stop":true}')
                await conn.send('{"resourceType":"namespace","stop":true}')  # no longer active
                return [json.loads(m) for m in await received_within(conn, 0.4)]

        got = asyncio.run(go())
    names = [m["name"] for m in got]
    assert names[0] == "resource.start" and names.count("resource.start") == 1
    assert names.count("resource.stop") == 1 and names[-1] == "resource.stop"
    assert got[-1] == {"name": "resource.stop", "resourceType": "namespace", "data": steve.SUBSCRIBE_DATA}


def test_steve_unrecorded_key_of_a_recorded_type_is_narrowed_and_restamped(steve_recording):
    _, frames = recorded_watch(steve_recording, "pods")
    namespace = frames[0].data["metadata"]["namespace"]
    mine = [e for e in frames if e.data["metadata"]["namespace"] == namespace]
    with ReplayServer(steve_recording, speed=20, steve_ping=60) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                await conn.send(json.dumps({"resourceType": "Pods", "namespace": namespace}))
                return await receive(conn, 1 + len(mine))

        got = asyncio.run(go())
    assert json.loads(got[0]) == {
        "name": "resource.start",
        "namespace": namespace,
        "resourceType": "Pods",
        "data": steve.SUBSCRIBE_DATA,
    }
    for raw, e in zip(got[1:], mine):
        doc = json.loads(raw)
        assert (doc["namespace"], doc["resourceType"], doc["revision"]) == (namespace, "Pods", e.revision)
        assert raw.endswith(e.raw[e.raw.index(',"data":') :])  # the object itself byte for byte


def test_steve_pings_carry_the_recorded_server_version(steve_recording):
    assert read_recording(steve_recording).header.server_version is None  # known only from the recorded pings
    with ReplayServer(steve_recording, speed=1, steve_ping=0.15) as server:

        async def go() -> list[str]:
            async with connect(ws_url(server)) as conn:
                return await received_within(conn, 0.5)

        got = asyncio.run(go())
    assert len(got) >= 2 and set(got) == {steve.ping(SERVER_VERSION)}


def test_steve_list_then_watch_ends_with_the_recordings_final_state(steve_recording):
    _, frames = recorded_watch(steve_recording, "pods")
    with ReplayServer(steve_recording, speed=3, steve_ping=60) as server:
        time.sleep(0.3)
        body = httpx.get(f"{server.url}/v1/pods").json()
        assert body["type"] == "collection" and body["resourceType"] == "pod" and body["revision"].isdigit()
        rev = body["revision"]
        state = {(o["type"], o["id"]): o for o in body.get("data", [])}
        missing = [e for e in frames if int(e.revision or 0) > int(rev)]
        assert missing, "listed mid-recording: some changes are still to come"

        async def go() -> None:
            async with connect(ws_url(server)) as conn:
                await conn.send(json.dumps({"resourceType": "pod", "resourceVersion": rev}))
                got = await receive(conn, 1 + len(missing))
                for raw in got[1:]:
                    doc = json.loads(raw)
                    key = (doc["data"]["type"], doc["data"]["id"])
                    if doc["name"] == "resource.remove":
                        state.pop(key, None)
                    else:
                        state[key] = doc["data"]

        asyncio.run(go())
    assert state == final_state(steve_recording, {"pod"})


def test_steve_collections_are_shaped_like_rancher(steve_recording):
    with ReplayServer(steve_recording, speed=1000, steve_ping=60) as server:
        time.sleep(0.1)
        full = httpx.get(f"{server.url}/v1/PODS").json()  # by plural, any case
        assert full["resourceType"] == "pod" and full["data"] and full["count"] == len(full["data"])
        empty = httpx.get(f"{server.url}/v1/pods/no-such-namespace").json()
        assert empty["type"] == "collection" and "data" not in empty and empty["revision"] == full["revision"]
        one = full["data"][0]
        assert httpx.get(f"{server.url}/v1/pods/{one['id']}").json() == one
        assert httpx.get(f"{server.url}/v1/nosuchtype").status_code == 404
        # a watched type that saw no object: an empty list, which has no data key at all
        assert httpx.get(f"{server.url}/v1/namespace").json() == {
            "type": "collection",
            "links": {"self": f"{server.url}/v1/namespace"},
            "createTypes": {"namespace": f"{server.url}/v1/namespace"},
            "actions": {},
            "resourceType": "namespace",
            "revision": full["revision"],
        }


# --- HTTP: endpoint, auth, origin, the page -------------------------------------------------------------


async def refused(url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers or {}, **kw):
            pass
    return info.value.response


def test_only_the_recorded_endpoint_is_served(norman_recording, steve_recording):
    with ReplayServer(norman_recording, norman_ping=60) as server:
        for path in ("/v1/subscribe", "/v3/subscribe", "/v3/clusters/c-other/subscribe"):
            assert asyncio.run(refused(ws_url(server, path))).status_code == 404
    with ReplayServer(steve_recording, steve_ping=60) as server:
        for path in ("/v3/subscribe", "/k8s/clusters/c-other/v1/subscribe"):
            assert asyncio.run(refused(ws_url(server, path))).status_code == 404

        async def local_alias() -> None:
            async with connect(ws_url(server, "/k8s/clusters/local/v1/subscribe")) as conn:
                await conn.send('{"resourceType":"namespace"}')
                assert json.loads(await asyncio.wait_for(conn.recv(), WAIT))["name"] == "resource.start"

        asyncio.run(local_alias())


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {SECRET_TOKEN}"},
        {"Authorization": "Basic " + base64.urlsafe_b64encode(SECRET_TOKEN.encode()).decode()},
        {"Cookie": f"R_SESS={SECRET_TOKEN}"},
    ],
    ids=["bearer", "basic", "cookie"],
)
def test_with_a_token_every_rancher_credential_form_works(steve_recording, headers):
    with ReplayServer(steve_recording, token=SECRET_TOKEN, steve_ping=60) as server:

        async def go() -> None:
            async with connect(ws_url(server), additional_headers=headers) as conn:
                await conn.send('{"resourceType":"namespace"}')
                assert json.loads(await asyncio.wait_for(conn.recv(), WAIT))["name"] == "resource.start"

        asyncio.run(go())
        assert httpx.get(f"{server.url}/v1/pods", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer token-wrong:nope"},
        {"Authorization": "Basic !!!", "Cookie": f"R_SESS={SECRET_TOKEN}"},
    ],
    ids=["none", "wrong", "cookie-ignored-with-authorization"],
)
def test_with_a_token_others_get_rancher_exact_401(norman_recording, headers):
    with ReplayServer(norman_recording, token=SECRET_TOKEN, norman_ping=60) as server:
        response = asyncio.run(refused(ws_url(server), headers))
        assert response.status_code == 401
        assert response.body.decode() == auth.UNAUTHORIZED_BODY
        assert response.headers["X-API-Cattle-Auth"] == "false"
        rest = httpx.get(f"{server.url}{server.script.path[: -len('/subscribe')]}/pods", headers=headers)
        assert (rest.status_code, rest.text) == (401, auth.UNAUTHORIZED_BODY)
        assert httpx.get(server.url + "/").status_code == 200  # the page itself is public, like Rancher's UI


def test_origin_checks_as_rancher(norman_recording):
    with ReplayServer(norman_recording, norman_ping=60) as server:
        browser = {"User-Agent": "Mozilla/5.0 (X11)", "Origin": "https://evil.example"}
        response = asyncio.run(refused(ws_url(server), browser, user_agent_header=None))
        assert (response.status_code, response.body.decode()) == (403, auth.ORIGIN_NOT_ALLOWED_BODY)
        response = asyncio.run(refused(ws_url(server), {"Origin": "http://elsewhere:1"}))
        assert (response.status_code, response.body) == (403, b"Forbidden\n")
        same = {"User-Agent": "Mozilla/5.0 (X11)", "Origin": server.url}

        async def same_origin() -> None:
            async with connect(ws_url(server), additional_headers=same, user_agent_header=None) as conn:
                await receive(conn, 1)

        asyncio.run(same_origin())


def test_the_page_is_self_contained_and_describes_the_replay(steve_recording):
    with ReplayServer(steve_recording, token=SECRET_TOKEN, speed=3, steve_ping=60) as server:
        response = httpx.get(server.url + "/")
    html = response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "__RANCHERLAB_REPLAY_INFO__" not in html and "://" not in html.replace("ws://", "").replace("wss://", "")
    assert " src=" not in html and "<link" not in html  # no external resources
    info = json.loads(html.split('id="replay-info">', 1)[1].split("</script>", 1)[0])
    assert info["dialect"] == "steve" and info["endpoint"] == "/v1/subscribe" and info["auth"] is True
    assert sorted(info["messages"]) == ['{"resourceType":"namespace"}', '{"resourceType":"pods"}']
    _, frames = recorded_watch(steve_recording, "pods")
    assert info["expected"]["resource.change"] >= sum(1 for e in frames if e.name == "resource.change")
    assert SECRET_TOKEN not in html


def test_the_token_never_reaches_logs_or_reprs(steve_recording, caplog):
    caplog.set_level(logging.DEBUG)
    with ReplayServer(steve_recording, token=SECRET_TOKEN, steve_ping=60) as server:
        assert SECRET_TOKEN not in repr(server) and SECRET_TOKEN not in repr(server.options)
        httpx.get(server.url + "/", params={"token": SECRET_TOKEN})
        httpx.get(server.url + "/v1/pods", headers={"Cookie": f"R_SESS={SECRET_TOKEN}"})

        async def go() -> None:
            async with connect(ws_url(server), additional_headers={"Authorization": f"Bearer {SECRET_TOKEN}"}) as conn:
                await conn.send('{"resourceType":"namespace"}')
                await asyncio.wait_for(conn.recv(), WAIT)

        asyncio.run(go())
        asyncio.run(refused(ws_url(server), {"Authorization": f"Bearer {SECRET_TOKEN}x"}))
    server_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("rancherlab"))
    assert "GET /?token=***" in server_log and "Authorization: ***" in server_log  # handshakes were logged, scrubbed
    assert "token-zq9xk" not in server_log


def test_bad_options_are_refused(steve_recording, tmp_path):
    with pytest.raises(ValueError, match="speed"):
        ReplayServer(steve_recording, speed=0)
    with pytest.raises(ValueError, match="loop"):
        ReplayServer(steve_recording, speed=float("inf"), loop=True)
    with pytest.raises(FileNotFoundError):
        ReplayServer(tmp_path / "nope.jsonl").start()


def test_cli_serve_says_how_to_connect_and_that_any_credential_goes(norman_recording):
    proc = subprocess.Popen(
        [sys.executable, "-m", "rancherlab", "serve", str(norman_recording), "--speed", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        text = "".join(lines)
        url = next(w for w in text.split() if w.startswith("ws://"))
        assert "any credential" in text

        async def go() -> list[str]:
            async with connect(url) as conn:
                return await receive(conn, 1)

        assert json.loads(asyncio.run(go())[0])["name"] in ("resource.change", "resource.remove")
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_cli_registers_serve() -> None:
    from rancherlab.cli import COMMANDS, build_parser

    assert "serve" in COMMANDS
    args = build_parser().parse_args(["serve", "x.jsonl", "--speed", "2", "--loop", "--reproduce-drops", "--port", "0"])
    assert (args.speed, args.loop, args.reproduce_drops, args.port) == (2.0, True, True, 0)


@pytest.mark.parametrize("sample", sorted(SAMPLES_DIR.glob("norman-*.jsonl*")), ids=lambda p: p.name)
def test_a_client_discovers_the_types_lists_and_watches_a_norman_replay(sample):
    """The replay answers the scope's /schemas, so a client not told the types finds them as on Rancher."""
    import rancherlab as rl

    header = rl.read_recording(sample).header
    with ReplayServer(sample, speed=float("inf")) as server:
        cap = rl.capture(
            server.url, header.scope, credentials="token-any:value", duration=1.5, env={}, cli_config=False
        )
        cap.wait()
    assert cap.error is None
    assert cap.stats.snapshot > 0 and cap.stats.resource_frames > 0


def test_steve_replay_offers_its_schemas_and_server_version():
    sample = SAMPLES_DIR / "steve-cluster.jsonl"
    header = read_recording(sample).header
    with ReplayServer(sample, speed=float("inf")) as server:
        prefix = header.endpoint[: -len("/subscribe")]
        schemas = httpx.get(server.url + prefix + "/schemas").json()
        version = httpx.get(server.url + "/v3/settings/server-version").json()
    assert {s["id"] for s in schemas["data"]} >= {"pod", "apps.deployment", "secret"}
    assert version["value"] == header.server_version
