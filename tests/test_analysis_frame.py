"""Events → DataFrame: columns, dtypes, and where each dialect keeps state, namespace and project."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from rancherlab.analysis import COLUMNS, flatten, frame
from rancherlab.analysis._frame import JSONObjectDtype
from rancherlab.protocol import CONNECTED, DISCONNECTED, marker, norman, parse_frame

from .conftest import T0, EventLog, sample_objects


def test_columns_and_dtypes() -> None:
    s = EventLog(step=0.5).add(marker(CONNECTED, "norman"))
    for obj in sample_objects("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json"):
        s.norman(obj)
    s.add(parse_frame(norman.PING, "norman")).add(marker(DISCONNECTED, "norman", code=1006))
    df = frame(s.events)
    assert tuple(df.columns) == COLUMNS
    assert len(df) == 3  # the ping is dropped
    assert list(df["kind"].cat.categories) == ["frame", "sent", "snapshot", "resync", "marker"]
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    assert dtypes["seq"] == dtypes["conn"] == "Int64"
    assert dtypes["time"] == "datetime64[us, UTC]"
    assert dtypes["t"] == "float64"
    for c in ("kind", "dialect", "name", "type", "state", "transitioning", "namespace", "project"):
        assert dtypes[c] == "category", c
    for c in ("id", "revision", "raw"):
        assert df[c].dtype == pd.StringDtype("pyarrow"), c
    # The object is held once, as JSON text, and parsed on access (a fresh dict each time).
    assert isinstance(df["object"].dtype, JSONObjectDtype)
    node = df["object"].iloc[1]
    assert isinstance(node, dict) and node == s.events[1].data and node is not df["object"].iloc[1]
    assert df["object"].tolist() == [None, node, None]
    assert df["time"].iloc[1] == pd.Timestamp(T0 + timedelta(seconds=2))
    assert df["info"].iloc[2] == {"code": 1006}
    assert df["raw"].iloc[1].startswith('{"name":"resource.change","data":{')


def test_pings_kept_on_request() -> None:
    s = EventLog(step=0.5).add(parse_frame(norman.PING, "norman"))
    assert len(frame(s.events)) == 0
    assert frame(s.events, pings=True)["name"].tolist() == ["ping"]


def test_empty_frame_has_the_columns() -> None:
    df = frame([])
    assert tuple(df.columns) == COLUMNS and len(df) == 0


def test_norman_fields_from_real_objects() -> None:
    s = EventLog(step=0.5)
    for f in (
        "norman-v3-workload-deployment-audit-response-rancher2.0-docs.json",
        "norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json",
        "norman-v3-users-collection-qa-server-dashboard-blueprint.json",
        "norman-v3-tokens-collection-qa-server-dashboard-blueprint.json",
    ):
        for obj in sample_objects(f):
            s.norman(obj)
    df = frame(s.events)
    dep = df.iloc[0]
    assert (dep["type"], dep["id"]) == ("deployment", "deployment:default:nginx")
    assert (dep["state"], dep["transitioning"]) == ("active", "no")
    assert (dep["namespace"], dep["project"]) == ("default", "c-bcz5t:p-fdr4s")
    assert set(df["type"]) == {"deployment", "cluster", "user", "token"}
    assert df["dialect"].eq("norman").all()


def test_steve_fields_from_real_objects() -> None:
    s = EventLog(step=0.5)
    for obj in sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json"):
        s.steve(obj, "resource.create")
    for obj in sample_objects("steve-v1-secrets-collection-rancher-integration-testdata.json"):
        s.steve(obj)
    ns = {
        "id": "calico-system",
        "type": "namespace",
        "metadata": {
            "name": "calico-system",
            "resourceVersion": "4411",
            "annotations": {"field.cattle.io/projectId": "c-abc:p-jwd4v"},
            "state": {"name": "active", "error": False, "transitioning": True, "message": ""},
        },
    }
    s.steve(ns)
    df = frame(s.events)
    pod = df.iloc[0]
    assert (pod["type"], pod["id"], pod["revision"]) == ("pod", "default/test1", "541786")
    assert (pod["state"], pod["transitioning"], pod["namespace"]) == ("running", "no", "default")
    assert pd.isna(pod["project"])
    secret = df[df["type"] == "secret"].iloc[0]
    # Secrets' metadata.state has no transitioning flag: unknown, not "no".
    assert secret["state"] == "active" and pd.isna(secret["transitioning"])
    assert secret["namespace"] == "test-ns-1"
    last = df.iloc[-1]
    assert (last["transitioning"], last["project"]) == ("yes", "c-abc:p-jwd4v")


def test_steve_error_state_maps_to_error() -> None:
    obj = {
        "id": "x/y",
        "type": "pod",
        "metadata": {
            "namespace": "x",
            "resourceVersion": "1",
            "state": {"name": "crashLoopBackOff", "error": True, "transitioning": False},
        },
    }
    df = frame(EventLog(step=0.5).steve(obj).events)
    assert df["transitioning"].tolist() == ["error"]


def test_flatten_wide_frame_keeps_conflicts_and_late_keys() -> None:
    s = EventLog(step=0.5)
    objs = [
        {"type": "thing", "id": "a", "size": 1, "spec": {"owner": "u-1"}},
        {"type": "thing", "id": "b", "size": "big", "spec": {"owner": None}},
        {"type": "thing", "id": "c", "size": 3, "spec": {"owner": "u-2", "extra": {"restarts": 4}}, "tags": ["x"]},
    ]
    for o in objs:
        s.norman(o)
    df = frame(s.events)
    wide = flatten(df, "thing")
    assert list(wide.index) == list(df.index)
    # Norman sends keys sorted; late keys come after the ones the first object had.
    assert list(wide.columns) == ["id", "size", "spec.owner", "type", "spec.extra.restarts", "tags"]
    assert wide.attrs["conflicts"] == {"size": ["integer", "string"]}
    assert wide.attrs["late_keys"] == {"spec.extra.restarts": 3, "tags": 3}
    assert wide["size"].dtype == object and wide["size"].tolist() == [1, "big", 3]
    assert str(wide["spec.extra.restarts"].dtype) == "Int64"
    assert wide["spec.extra.restarts"].isna().sum() == 2
    assert wide["spec.owner"].dtype == pd.StringDtype("pyarrow")
    assert wide["tags"].iloc[2] == ["x"]


def test_flatten_real_pods() -> None:
    s = EventLog(step=0.5)
    for obj in sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json"):
        s.steve(obj)
    wide = flatten(frame(s.events), "pod")
    assert wide["metadata.state.name"].tolist() == ["running"] * 3
    assert str(wide["metadata.state.transitioning"].dtype) == "boolean"


@pytest.mark.parametrize("kind", ["snapshot", "resync"])
def test_snapshot_and_resync_rows_carry_objects(kind: str) -> None:
    obj = sample_objects("norman-v3-users-collection-qa-server-dashboard-blueprint.json")[0]
    e = parse_frame(norman.change_frame(obj), "norman").replace(kind=kind)
    df = frame(EventLog(step=0.5).add(e).events)
    assert df["kind"].tolist() == [kind] and df["state"].tolist() == ["active"]
