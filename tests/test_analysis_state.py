"""Current state and field-level diffs: removes, Norman's double delivery, resync, scaled deployments."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pandas as pd

from rancherlab.analysis import diffs, state
from rancherlab.protocol import RESYNC_FINISHED, RESYNC_STARTED, marker

from .conftest import T0, EventLog, sample_objects


def deployment(scale: int) -> dict[str, Any]:
    obj = copy.deepcopy(sample_objects("norman-v3-workload-deployment-audit-response-rancher2.0-docs.json")[0])
    obj["scale"] = scale
    return obj


def keys(df: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(df["type"].astype(str), df["id"].astype(str)))


def test_norman_double_delivery_is_one_object_and_no_diff() -> None:
    s = EventLog().norman(deployment(2)).norman(deployment(2)).norman(deployment(3)).norman(deployment(3))
    df = s.frame()
    now = state(df)
    assert keys(now) == [("deployment", "deployment:default:nginx")]
    assert now["seq"].tolist() == [4] and now["object"].iloc[0]["scale"] == 3
    d = diffs(df)
    assert d[["path", "old", "new", "seq"]].values.tolist() == [["scale", 2, 3, 3]]
    assert d["change"].tolist() == ["changed"]


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
        ("user", users[0]["id"]), ("user", "u-new")]
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
        return {"id": "default/web", "type": "apps.deployment", "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "resourceVersion": rv, "fields": ["web", f"{replicas}/{replicas}"],
                             "state": {"name": "active", "error": False, "transitioning": False}},
                "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}}
    changed = dep(3, "12")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    s = EventLog().steve(dep(2, "10"), "resource.create").steve(changed)
    d = diffs(s.frame())
    assert d[["path", "old", "new"]].values.tolist() == [
        ["spec.replicas", 2, 3], ["spec.template.spec.containers[0].image", "nginx:1", "nginx:2"]]
    everything = diffs(s.frame(), ignore=())
    assert {"metadata.resourceVersion", "metadata.fields[1]"} <= set(everything["path"])
    assert str(d["time"].dtype) == "datetime64[us, UTC]" and d["seq"].tolist() == [2, 2]


def test_diffs_added_and_removed_fields() -> None:
    a = {"type": "thing", "id": "x", "spec": {"a": 1, "b": [1, 2]}}
    b = {"type": "thing", "id": "x", "spec": {"b": [1], "c": None}}
    d = diffs(EventLog().norman(a).norman(b).frame())
    assert d[["path", "old", "new", "change"]].values.tolist() == [
        ["spec.a", 1, None, "removed"], ["spec.b[1]", 2, None, "removed"], ["spec.c", None, None, "added"]]
