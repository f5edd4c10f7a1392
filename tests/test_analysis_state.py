"""Current state and field-level diffs: removes, Norman's double delivery, resync, scaled deployments."""

from __future__ import annotations

import copy
import itertools
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

import rancherlab as rl
from rancherlab.analysis import DEFAULT_IGNORE, diffs, reference, state
from rancherlab.protocol import RESYNC_FINISHED, RESYNC_STARTED, marker

from .conftest import T0, EventLog, sample_objects


def deployment(scale: int, via: str = "workloads") -> dict[str, Any]:
    """The sample deployment as the `workload` stream sends it, or with `via="deployments"` as the `deployment` one."""
    obj = copy.deepcopy(sample_objects("norman-v3-workload-deployment-audit-response-rancher2.0-docs.json")[0])
    obj["scale"] = scale
    self_url = obj["links"]["self"]
    obj["actions"] = {a: f"{self_url}?action={a}" for a in ("pause", "redeploy", "resume")}
    for group in ("links", "actions"):
        obj[group] = {k: v.replace("/workloads/", f"/{via}/") for k, v in obj[group].items()}
    return obj


def keys(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(df["type"].astype(str), df["id"].astype(str)))


def test_norman_double_delivery_is_one_object_and_its_urls_no_diff() -> None:
    """Each version comes from the `deployment` stream, then the `workload` one, with that stream's URLs."""
    s = EventLog()
    for scale in (2, 2, 3, 3):
        s.norman(deployment(scale, "deployments")).norman(deployment(scale, "workloads"))
    df = s.frame()
    now = state(df)
    assert keys(now) == [("deployment", "deployment:default:nginx")]
    assert now["seq"].tolist() == [8] and now["object"].iloc[0]["scale"] == 3
    for ignore in (DEFAULT_IGNORE, ()):
        d = diffs(df, ignore=ignore)
        assert d[["path", "old", "new", "seq", "change"]].values.tolist() == [["scale", 2, 3, 5, "changed"]]


def test_a_real_url_change_under_double_delivery_still_shows_per_stream() -> None:
    """An action that appears is a change of both streams' resources, each with its own URL."""
    s = EventLog()
    for via in ("deployments", "workloads"):
        s.norman(deployment(2, via))
    for via in ("deployments", "workloads"):
        obj = deployment(2, via)
        obj["actions"]["rollback"] = obj["links"]["self"] + "?action=rollback"
        s.norman(obj)
    d = diffs(s.frame())
    assert d[["path", "seq", "change"]].values.tolist() == [
        ["actions.rollback", 3, "added"],
        ["actions.rollback", 4, "added"],
    ]
    assert ["/deployments/" in d["new"].iloc[0], "/workloads/" in d["new"].iloc[1]] == [True, True]


def test_simulated_norman_capture_diffs_show_changes_not_double_delivery(tmp_path: Path) -> None:
    """A real capture of the simulator's project stream, deployments delivered by both streams."""
    path = tmp_path / "project.jsonl"
    with rl.Simulator(7, rate=0, norman_ping=60, buffer=100_000) as sim:  # no slow-consumer drop for the burst
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]
        cap = rl.capture(
            sim.url,
            f"project:{project}",
            credentials=sim.token,
            types=["deployment", "workload", "pod"],
            record=path,
            env={},
            cli_config=False,
        )
        deadline = time.monotonic() + 30
        while cap.stats.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        sim.step(400)
        seen = -1
        while seen != cap.stats.resource_frames and time.monotonic() < deadline:  # until the stream goes quiet
            seen = cap.stats.resource_frames
            time.sleep(0.3)
        cap.stop()
    df = rl.load(path)
    deps = df[df["type"] == "deployment"]
    streams = {o["links"]["self"].split("/")[-2] for o in deps["object"]}
    assert streams == {"deployments", "workloads"}, "the capture holds the double delivery"
    d = diffs(df)
    assert not d["path"].str.startswith(("links.", "actions.")).any()
    assert not diffs(df, ignore=())["path"].str.startswith(("links.", "actions.")).any()
    # every real change of a deployment's scale shows, once
    scale_changes = 0
    for _, versions in deps.groupby("id", observed=True):
        scales = [o["scale"] for o in versions["object"]]
        scale_changes += sum(a != b for a, b in itertools.pairwise(scales))
    scaled = d[(d["type"] == "deployment") & (d["path"] == "scale")]
    assert len(scaled) == scale_changes > 0
    assert ((d["type"] == "pod") & (d["path"] == "state")).any()
    fields = {f["path"]: f["changes"] for f in reference(df)["types"]["norman/deployment"]["fields"]}
    assert fields["links.self"] == fields["actions.pause"] == 0 and fields["scale"] == scale_changes


def test_removes_in_both_dialects() -> None:
    nodes = sample_objects("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json")
    users = sample_objects("norman-v3-users-collection-qa-server-dashboard-blueprint.json")
    pods = sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")
    s = EventLog()
    for o in (*nodes, *users):
        s.norman(o)
    for p in pods:
        s.steve(p, "resource.create")
    s.norman(users[0], "resource.remove")
    s.steve(pods[1], "resource.remove")
    purging = copy.deepcopy(nodes[0])
    purging["state"] = "purging"
    s.norman(purging)
    now = state(s.frame())
    assert keys(now) == [("pod", "default/test1"), ("pod", "default/test3"), ("user", users[1]["id"])]


def test_state_at_a_point() -> None:
    s = EventLog().norman(deployment(1)).norman(deployment(2)).norman(deployment(3), "resource.remove")
    df = s.frame()
    assert state(df).empty
    assert state(df, at=2)["object"].iloc[0]["scale"] == 2
    assert state(df, at=T0 + timedelta(seconds=1))["object"].iloc[0]["scale"] == 1
    assert state(df, at=pd.Timestamp("2024-05-01 12:00:02"))["seq"].tolist() == [2]


def test_resync_drops_objects_not_relisted() -> None:
    users = sample_objects("norman-v3-users-collection-qa-server-dashboard-blueprint.json")
    tokens = sample_objects("norman-v3-tokens-collection-qa-server-dashboard-blueprint.json")
    s = EventLog()
    for o in (*users, *tokens):
        s.norman(o)
    s.add(marker(RESYNC_STARTED, "norman"))
    s.norman(users[0], kind="resync")  # users[1] was deleted while we were away
    late = copy.deepcopy(users[1])
    late["id"] = "u-new"
    s.norman(late)  # a live change during the resync is kept
    s.add(marker(RESYNC_FINISHED, "norman"))
    now = state(s.frame())
    assert keys(now) == [("token", t["id"]) for t in sorted(tokens, key=lambda t: t["id"])] + [
        ("user", users[0]["id"]),
        ("user", "u-new"),
    ]
    assert now[now["id"] == users[0]["id"]]["kind"].tolist() == ["resync"]


def test_resync_of_an_empty_type_named_in_the_marker() -> None:
    tokens = sample_objects("norman-v3-tokens-collection-qa-server-dashboard-blueprint.json")
    s = EventLog()
    for o in tokens:
        s.norman(o)
    s.add(marker(RESYNC_STARTED, "norman", types=["token"])).add(marker(RESYNC_FINISHED, "norman"))
    assert state(s.frame()).empty


def test_steve_scaled_deployment_diff() -> None:
    def dep(replicas: int, rv: str) -> dict[str, Any]:
        return {
            "id": "default/web",
            "type": "apps.deployment",
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "resourceVersion": rv,
                "fields": ["web", f"{replicas}/{replicas}"],
                "state": {"name": "active", "error": False, "transitioning": False},
            },
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
        }

    changed = dep(3, "12")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    s = EventLog().steve(dep(2, "10"), "resource.create").steve(changed)
    d = diffs(s.frame())
    assert d[["path", "old", "new"]].values.tolist() == [
        ["spec.replicas", 2, 3],
        ["spec.template.spec.containers[0].image", "nginx:1", "nginx:2"],
    ]
    everything = diffs(s.frame(), ignore=())
    assert {"metadata.resourceVersion", "metadata.fields[1]"} <= set(everything["path"])
    assert str(d["time"].dtype) == "datetime64[us, UTC]" and d["seq"].tolist() == [2, 2]


def test_diffs_added_and_removed_fields() -> None:
    a = {"type": "thing", "id": "x", "spec": {"a": 1, "b": [1, 2]}}
    b = {"type": "thing", "id": "x", "spec": {"b": [1], "c": None}}
    d = diffs(EventLog().norman(a).norman(b).frame())
    assert d[["path", "old", "new", "change"]].values.tolist() == [
        ["spec.a", 1, None, "removed"],
        ["spec.b[1]", 2, None, "removed"],
        ["spec.c", None, None, "added"],
    ]
