"""Steve's `count` resource merges: the whole map once, then only the types whose count changed
(rancher/rancher#36681, rancher/steve#58). State, diffs, the replay server and the simulator hold the merged map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import rancherlab as rl
from rancherlab.protocol import counts
from rancherlab.simulator.rest import handle_rest
from rancherlab.simulator.world import World

from .conftest import SECRET_TOKEN

# --- the rule, from plain dicts ------------------------------------------------------------------------


def _count(**types: int) -> dict[str, Any]:
    return {
        "id": "count",
        "type": "count",
        "links": {"self": "https://r/v1/counts/count"},
        "counts": {t: {"summary": {"count": n}} if n else {"summary": {}} for t, n in types.items()},
    }


def test_merge_replaces_changed_types_and_keeps_the_others() -> None:
    full = _count(pod=6, namespace=3, **{"apps.deployment": 2})
    update = _count(pod=7)
    merged = counts.merge(full, update)
    assert merged["counts"] == {
        "pod": {"summary": {"count": 7}},
        "namespace": {"summary": {"count": 3}},
        "apps.deployment": {"summary": {"count": 2}},
    }
    assert full["counts"]["pod"] == {"summary": {"count": 6}} and update["counts"] == {"pod": {"summary": {"count": 7}}}


def test_merge_replaces_a_type_entry_whole() -> None:
    held = {"counts": {"pod": {"summary": {"count": 2, "states": {"error": 1}}, "namespaces": {"a": {"count": 2}}}}}
    gone = counts.merge(held, _count(pod=0))  # the last pod went away: Steve sends `{"summary":{}}`
    assert gone["counts"]["pod"] == {"summary": {}}


def test_merge_from_nothing_and_with_malformed_sides() -> None:
    update = _count(pod=1)
    assert counts.merge(None, update) == update and counts.merge(None, update) is not update
    assert counts.merge({"id": "count"}, update)["counts"] == update["counts"]
    assert counts.merge(_count(pod=1), {"id": "count", "message": "boom"})["counts"] == {
        "pod": {"summary": {"count": 1}}
    }
    assert counts.is_count("count") and counts.is_count("Count") and not counts.is_count("pod")


# --- recorded from the simulator: what a client holds ---------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `count` watch recorded from the socket alone (no REST snapshot) while the world churns."""
    out = tmp_path_factory.mktemp("counts") / "counts.jsonl"
    with rl.Simulator(seed=3, token=SECRET_TOKEN, rate=30, count_interval=0.3, steve_ping=1) as sim:
        rl.capture(
            sim.url, "steve", types=["count"], credentials=SECRET_TOKEN, duration=2.5, record=out, snapshot=False
        ).wait()
    return out


def _count_frames(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df[(df["kind"] == "frame") & (df["name"] == "resource.change") & (df["type"] == "count")]
    return list(rows["object"])


def _merged(frames: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for obj in frames:
        out.update(obj["counts"])
    return out


def test_state_holds_the_merged_count_map(recorded: Path) -> None:
    df = rl.load(recorded)
    frames = _count_frames(df)
    assert len(frames) >= 3 and len(frames[-1]["counts"]) < len(frames[0]["counts"])  # updates are partial
    st = rl.state(df)
    held = st[st["type"] == "count"]["object"].iloc[0]
    assert held["counts"] == _merged(frames) and len(held["counts"]) == len(frames[0]["counts"])
    # the recording's own rows are left as they came
    assert _count_frames(df)[-1] == frames[-1] and len(frames[-1]["counts"]) < len(frames[0]["counts"])


def test_diffs_report_no_count_removed_for_types_an_update_leaves_out(recorded: Path) -> None:
    df = rl.load(recorded)
    updates = {
        int(seq): obj["counts"]
        for seq, obj in zip(df["seq"], df["object"])
        if isinstance(obj, dict) and obj.get("type") == "count"
    }
    d = rl.diffs(df)
    d = d[d["type"] == "count"]
    assert len(d) > 0
    for seq, path in zip(d["seq"], d["path"]):
        # every changed leaf belongs to a type the update at that seq carried (a left-out type is unchanged)
        assert any(path.startswith(f"counts.{t}.") for t in updates[int(seq)]), (seq, path)


def test_replay_server_lists_the_merged_count(recorded: Path) -> None:
    frames = _count_frames(rl.load(recorded))
    with rl.ReplayServer(recorded, speed=float("inf")) as server:
        for path in ("/v1/counts", "/v1/count", "/v1/COUNTS"):
            r = httpx.get(server.url + path, timeout=10)
            assert r.status_code == 200, (path, r.text)
            assert r.json()["data"][0]["counts"] == _merged(frames)


def test_default_capture_of_count_lists_it_and_merges_the_watch(tmp_path: Path) -> None:
    """With the REST snapshot (the default) the simulator answers `/v1/count` like Steve: the whole map."""
    out = tmp_path / "counts.jsonl"
    with rl.Simulator(seed=3, token=SECRET_TOKEN, rate=30, count_interval=0.3, steve_ping=1) as sim:
        cap = rl.capture(sim.url, "steve", types=["count"], credentials=SECRET_TOKEN, duration=2, record=out)
        cap.wait()
        assert cap.error is None
        truth = httpx.get(sim.url + "/v1/counts/count", headers={"Authorization": f"Bearer {SECRET_TOKEN}"}).json()
    df = rl.load(out)
    snap = df[(df["kind"] == "snapshot") & (df["type"] == "count")]
    assert len(snap) == 1 and set(snap["object"].iloc[0]["counts"]) == set(truth["counts"])
    held = rl.state(df).set_index("type").loc["count", "object"]
    assert set(held["counts"]) == set(truth["counts"])


# --- the simulator's REST: `count`, and every type by id or plural in any case ----------------------------


@pytest.fixture(scope="module")
def world() -> World:
    w = World(21)
    for _ in range(50):
        w.step()
    return w


def _get(world: World, path: str, forbid: frozenset[str] = frozenset()) -> tuple[int, dict[str, Any]]:
    reply = handle_rest(world, path, {}, "https://r", forbid)
    assert reply is not None, path
    return reply


def test_simulator_rest_serves_count_by_id_or_plural_in_any_case(world: World) -> None:
    for path in ("/v1/count", "/v1/counts", "/v1/Counts", "/k8s/clusters/local/v1/COUNT"):
        status, body = _get(world, path)
        assert status == 200 and body["resourceType"] == "count" and len(body["data"]) == 1, path
        assert body["data"][0]["id"] == "count"
    status, obj = _get(world, "/v1/counts/count")
    pods = len(world.resources("pod", "local"))
    assert status == 200 and obj["counts"]["pod"]["summary"]["count"] == pods
    assert "count" in {s["id"] for s in _get(world, "/v1/schemas")[1]["data"]}
    assert _get(world, "/v1/schemas/counts")[1]["pluralName"] == "counts"


@pytest.mark.parametrize(
    "path", ["/v1/PODS", "/v1/Pod", "/v1/apps.Deployments", "/v3/Clusters", "/v3/cluster", "/v3/USERS"]
)
def test_simulator_resolves_every_type_by_id_or_plural_ignoring_case(world: World, path: str) -> None:
    status, body = _get(world, path)
    assert status == 200 and body["type"] == "collection", (path, body)


def test_norman_scoped_types_resolve_ignoring_case(world: World) -> None:
    cid = world.clusters()[-1]
    pid = world.projects(cid)[0]
    assert _get(world, f"/v3/projects/{pid}/Pods")[1]["resourceType"] == "pod"
    assert _get(world, f"/v3/projects/{pid}/pod")[1]["resourceType"] == "pod"
    assert _get(world, f"/v3/clusters/{cid}/NAMESPACES")[1]["resourceType"] == "namespace"


# --- the schemas agree with the refusals (`forbid`) --------------------------------------------------------


def test_norman_schemas_leave_out_forbidden_types(world: World) -> None:
    forbid = frozenset({"pod"})
    ids = {s["id"] for s in _get(world, "/v3/project/schemas", forbid)[1]["data"]}
    assert "pod" not in ids and "workload" in ids
    assert _get(world, "/v3/project/schemas/pod", forbid)[0] == 404
    pid = world.projects(world.clusters()[-1])[0]
    assert handle_rest(world, f"/v3/projects/{pid}/pods", {}, "https://r", forbid) is None  # no such type: 404


def test_steve_schemas_drop_the_watch_verb_of_forbidden_types(world: World) -> None:
    """A Steve type the caller may list but not watch: listed, its schema without `watch`, left out of `count`."""
    forbid = frozenset({"secret"})
    schema = next(s for s in _get(world, "/v1/schemas", forbid)[1]["data"] if s["id"] == "secret")
    assert "watch" not in schema["attributes"]["verbs"] and "list" in schema["attributes"]["verbs"]
    assert _get(world, "/v1/secrets", forbid)[0] == 200
    count_map = _get(world, "/v1/counts/count", forbid)[1]["counts"]
    assert "secret" not in count_map and "pod" in count_map


def test_forbidden_norman_type_error_does_not_offer_it(tmp_path: Path) -> None:
    """`simulate --forbid pod`: the refusal and the schemas agree, so the error does not list pod as offered."""
    with rl.Simulator(seed=3, token=SECRET_TOKEN, rate=0, forbid=("pod",)) as sim:
        cid = sim.world.clusters()[-1]
        scope = f"project:{sim.world.projects(cid)[0]}"
        with pytest.raises(rl.RancherlabError) as info:
            rl.capture(sim.url, scope, types=["pod"], credentials=SECRET_TOKEN, duration=2).wait()
    message = str(info.value)
    assert "has no type pod" in message
    offered = message.split("offers:", 1)[1] if "offers:" in message else message
    assert "pod" not in {t.strip(" .,") for t in offered.replace("\n", " ").split(",")}, message


def test_count_schema_json_is_steve_shaped(world: World) -> None:
    obj = _get(world, "/v1/schemas/count")[1]
    assert json.loads(json.dumps(obj))["collectionMethods"] == ["GET"]


def test_replay_server_resolves_norman_types_by_id_or_plural_ignoring_case() -> None:
    from rancherlab.protocol import norman, parse_frame
    from rancherlab.recording import RecordingHeader
    from rancherlab.replayserver._script import build_script

    from .conftest import sample_objects

    nodes = sample_objects("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json")
    header = RecordingHeader.from_url("wss://rancher.test/v3/subscribe", redaction={"enabled": False})
    events = [
        parse_frame(norman.change_frame(o), "norman").stamped(seq=i, conn=1, t=float(i), ts=None)
        for i, o in enumerate(nodes, 1)
    ]
    script = build_script(header, events)
    for name in ("nodes", "Nodes", "NODES", "node", "Node"):
        assert script.lookup(name) == "node", name
    assert script.lookup("pods") is None
