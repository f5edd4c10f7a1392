"""The schema catalog: presence and type counts, conflicts and late keys, diffs between catalogs, JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from rancherlab.analysis import event_names, frame, json_schema, schema, schema_diff
from rancherlab.protocol import Event, norman, parse_frame, steve

from .conftest import SAMPLES

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def events(objs: list[dict[str, Any]], dialect: str = "norman") -> list[Event]:
    out = []
    for n, o in enumerate(objs, 1):
        text = (
            norman.change_frame(o)
            if dialect == "norman"
            else steve.encode_event("resource.change", data=o, echo={"resourceType": o["type"]})
        )
        out.append(parse_frame(text, dialect).stamped(seq=n, conn=1, t=float(n), ts=T0 + timedelta(seconds=n)))
    return out


def row(cat: pd.DataFrame, path: str, type: str = "thing") -> pd.Series:
    hit = cat[(cat["type"] == type) & (cat["path"] == path)]
    assert len(hit) == 1, path
    return hit.iloc[0]


OBJS = [
    {"type": "thing", "id": "a", "size": 1, "owner": "u-1", "ports": [{"port": 80}, {"port": 443}]},
    {"type": "thing", "id": "b", "size": "big", "owner": None, "ports": []},
    {
        "type": "thing",
        "id": "c",
        "size": 3,
        "owner": "u-1",
        "ports": [{"port": 80, "name": "http"}],
        "extra": {"restarts": 0},
    },
    {"type": "thing", "id": "d", "size": 2.5, "ports": []},
]


def test_catalog_counts() -> None:
    cat = schema(frame(events(OBJS)))
    size = row(cat, "size")
    assert size["types"] == {"integer": 2, "number": 1, "string": 1}
    assert size["presence"] == 100.0 and size["distinct"] == 4 and bool(size["conflict"])
    assert size["first_seq"] == 1 and size["objects"] == 4
    owner = row(cat, "owner")
    assert owner["types"] == {"null": 1, "string": 2}
    assert owner["presence"] == 75.0
    assert abs(owner["nulls"] - 100 / 3) < 1e-9
    assert owner["distinct"] == 1 and not owner["conflict"]
    assert owner["examples"] == ['"u-1"']
    port = row(cat, "ports[].port")
    assert port["types"] == {"integer": 3} and port["presence"] == 50.0 and not port["late"]
    assert row(cat, "ports")["types"] == {"array": 4}
    assert pd.isna(row(cat, "ports")["distinct"])
    assert bool(row(cat, "ports[].name")["late"]) and row(cat, "ports[].name")["first_seq"] == 3
    assert bool(row(cat, "extra.restarts")["late"]) and bool(row(cat, "extra")["late"])
    assert not row(cat, "id")["late"]
    # integer and number together are one JSON number, not a conflict
    assert set(cat[cat["conflict"]]["path"]) == {"size"}


def test_examples_are_truncated() -> None:
    cat = schema(frame(events([{"type": "thing", "id": "x", "text": "y" * 500}])))
    ex = row(cat, "text")["examples"][0]
    assert len(ex) < 70 and ex.endswith('…"')


def test_catalog_of_real_objects_covers_both_dialects() -> None:
    def load(name: str) -> list[dict[str, Any]]:
        return json.loads((SAMPLES / name).read_text(encoding="utf-8"))["data"]

    df = pd.concat(
        [
            frame(events(load("norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json"))),
            frame(events(load("steve-v1-pods-collection-qa-server-dashboard-blueprint.json"), "steve")),
        ],
        ignore_index=True,
    )
    cat = schema(df)
    assert set(zip(cat["dialect"], cat["type"])) == {("norman", "cluster"), ("steve", "pod")}
    assert row(cat, "metadata.state.name", "pod")["types"] == {"string": 3}
    assert row(cat, "spec.containers[].image", "pod")["presence"] == 100.0
    # label keys hold dots: the path string is ambiguous, the parts are not
    labels = cat[(cat["type"] == "cluster") & cat["path"].str.startswith("labels.")]
    assert all(len(p) == 2 for p in labels["parts"])
    names = event_names(df)
    assert names[["type", "name", "count"]].values.tolist() == [
        ["cluster", "resource.change", 1],
        ["pod", "resource.change", 3],
    ]


def test_schema_diff() -> None:
    a = schema(frame(events(OBJS)))
    newer = [{**o, "owner": 7} for o in OBJS[:1]] + [{"type": "thing", "id": "e", "size": 1, "ports": [], "labels": {}}]
    b = schema(frame(events(newer)))
    d = schema_diff(a, b)
    got = {(p, c) for p, c in zip(d["path"], d["change"])}
    assert ("labels", "added") in got and ("extra", "removed") in got and ("ports[].name", "removed") in got
    assert ("owner", "type_changed") in got and ("size", "type_changed") in got
    owner = d[d["path"] == "owner"].iloc[0]
    assert (owner["old_types"], owner["new_types"]) == (["string"], ["integer"])
    assert schema_diff(a, a).empty


def test_json_schema() -> None:
    cat = schema(frame(events(OBJS)))
    js = json_schema(cat, "norman", "thing")
    assert js["type"] == "object"
    assert sorted(js["required"]) == ["id", "ports", "size", "type"]
    assert js["properties"]["size"]["type"] == ["integer", "number", "string"]
    assert js["properties"]["ports"]["items"]["properties"]["port"]["type"] == "integer"
    assert "required" not in js["properties"]["ports"]["items"]
    json.dumps(js)
