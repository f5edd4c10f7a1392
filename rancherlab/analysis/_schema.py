"""The event-schema explorer: what fields each resource type really carries, as observed on the wire.

Rancher documents neither stream's object shapes, so the catalog is the reference: per (dialect, type)
every path with its JSON types, how often it is there, null, distinct, examples, and where it first showed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from ..protocol._json import dumps_text, loads
from ._flatten import is_conflict, json_type
from ._frame import STRING
from ._state import object_rows

ITEMS: Final = "[]"  # the path step for "any element of this array"
MAX_EXAMPLES: Final = 3
MAX_EXAMPLE_CHARS: Final = 60
_DISTINCT_CAP: Final = 10_000
_INDEX: Final = re.compile(r"\[\d+\]")

Parts = tuple[str, ...]


@dataclass
class _Field:
    first_seq: int
    types: Counter[str] = field(default_factory=Counter)
    objects: int = 0
    nulls: int = 0
    distinct: set[Any] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)


def path_of(parts: Parts) -> str:
    """('spec', 'containers', '[]', 'image') → 'spec.containers[].image'."""
    out = ""
    for p in parts:
        out = out + p if p == ITEMS else (f"{out}.{p}" if out else p)
    return out


def generic_path(path: str) -> str:
    """A diff path ('spec.containers[0].image') as a catalog path ('spec.containers[].image')."""
    return _INDEX.sub(ITEMS, path)


def example(value: Any) -> str:
    """JSON text of a value, strings cut to `MAX_EXAMPLE_CHARS` (values are redacted before recording)."""
    if isinstance(value, str) and len(value) > MAX_EXAMPLE_CHARS:
        value = value[: MAX_EXAMPLE_CHARS - 1] + "…"
    try:
        return dumps_text(value)
    except (TypeError, ValueError):  # nothing JSON can hold (recordings only hold what it can)
        return repr(value)


_JSON_TYPES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _walk(value: Any, parts: Parts, seen: dict[Parts, _Field], here: set[Parts], seq: int) -> None:
    f = seen.get(parts)
    if f is None:
        f = seen[parts] = _Field(first_seq=seq)
    t = _JSON_TYPES.get(type(value)) or json_type(value)
    f.types[t] += 1
    if parts not in here:
        here.add(parts)
        f.objects += 1
    if t == "object":
        for k, v in value.items():
            _walk(v, (*parts, k if type(k) is str else str(k)), seen, here, seq)
    elif t == "array":
        item = (*parts, ITEMS)
        for v in value:
            _walk(v, item, seen, here, seq)
    elif t == "null":
        f.nulls += 1
    else:
        if len(f.distinct) < _DISTINCT_CAP:
            f.distinct.add((t, value))
        if len(f.examples) < MAX_EXAMPLES:
            ex = example(value)
            if ex not in f.examples:
                f.examples.append(ex)


class SchemaBuilder:
    """The field catalog and event-name counts built batch by batch (`add`), so a recording of any size
    streams through in bounded memory: what is kept grows with the number of distinct paths (and up to
    10,000 distinct values each), not with the number of events."""

    def __init__(self) -> None:
        self.events = 0
        self._groups: dict[tuple[str, str], tuple[dict[Parts, _Field], list[int]]] = {}
        self._first_paths: dict[tuple[str, str], set[Parts]] = {}
        self._names: Counter[tuple[str, str, str]] = Counter()

    def add(self, df: pd.DataFrame, *, events: int | None = None) -> SchemaBuilder:
        """Take one frame (or batch of one) into the catalog; frames are taken in recording order.

        `events` is how many events the batch stood for, when `df` holds only its object rows.
        """
        self.events += len(df) if events is None else events
        rows = df[object_rows(df)]
        groups, first_paths = self._groups, self._first_paths
        cols = (rows[c].tolist() for c in ("dialect", "type", "seq", "kind", "name", "object"))
        for dialect, typ, seq, kind, name, obj in zip(*cols):
            self._names[(dialect, typ, name if kind == "frame" else kind)] += 1
            if not isinstance(obj, dict):
                continue
            g = (dialect, typ)
            seen, count = groups.setdefault(g, ({}, [0]))
            count[0] += 1
            here: set[Parts] = set()
            for k, v in obj.items():
                _walk(v, (str(k),), seen, here, int(seq))
            if count[0] == 1:
                first_paths[g] = here
        return self

    def event_names(self) -> pd.DataFrame:
        """As `event_names`: columns dialect, type, name, count."""
        keys = sorted(self._names)
        return pd.DataFrame(
            {
                "dialect": pd.Series([k[0] for k in keys], dtype=object),
                "type": pd.Series([k[1] for k in keys], dtype=object),
                "name": pd.Series([k[2] for k in keys], dtype=object),
                "count": pd.Series([self._names[k] for k in keys], dtype="int64"),
            }
        )

    def catalog(self) -> pd.DataFrame:
        """The catalog `schema` documents."""
        return _catalog(self._groups, self._first_paths)


def schema(df: pd.DataFrame) -> pd.DataFrame:
    """The field catalog: one row per (dialect, type, path) over every object-carrying row of `df`.

    Columns: dialect, type, path (dotted, `[]` = any array element), parts (the path as a tuple, exact even
    when keys hold dots, as labels do), types ({JSON type: count}), presence (% of the type's objects that
    have the path), nulls (% of occurrences that are null), distinct (distinct scalar values, counted up to
    10,000), examples (up to 3, JSON text, cut to 60 chars), first_seq, objects (the type's object count),
    conflict (more than one non-null JSON type; integer and number count as one) and late (the type's first
    object lacked the path: sample-based schema inference would miss it). `SchemaBuilder` builds the same
    catalog from batches, for recordings too big to load.
    """
    return SchemaBuilder().add(df).catalog()


def _catalog(
    groups: dict[tuple[str, str], tuple[dict[Parts, _Field], list[int]]], first_paths: dict[tuple[str, str], set[Parts]]
) -> pd.DataFrame:
    out: dict[str, list[Any]] = {
        c: []
        for c in (
            "dialect",
            "type",
            "path",
            "parts",
            "types",
            "presence",
            "nulls",
            "distinct",
            "examples",
            "first_seq",
            "objects",
            "conflict",
            "late",
        )
    }
    for (dialect, typ), (seen, count) in groups.items():
        n = count[0]
        for parts, f in seen.items():
            occurrences = sum(f.types.values())
            scalar = not ({"object", "array"} & f.types.keys())
            out["dialect"].append(dialect)
            out["type"].append(typ)
            out["path"].append(path_of(parts))
            out["parts"].append(parts)
            out["types"].append(dict(sorted(f.types.items())))
            out["presence"].append(100.0 * f.objects / n)
            out["nulls"].append(100.0 * f.nulls / occurrences)
            out["distinct"].append(len(f.distinct) if scalar else None)
            out["examples"].append(list(f.examples))
            out["first_seq"].append(f.first_seq)
            out["objects"].append(n)
            out["conflict"].append(is_conflict(f.types.keys()))
            out["late"].append(parts not in first_paths[(dialect, typ)])
    cat = pd.DataFrame(
        {
            "dialect": pd.array(out["dialect"], dtype=STRING),
            "type": pd.array(out["type"], dtype=STRING),
            "path": pd.array(out["path"], dtype=STRING),
            "parts": pd.Series(out["parts"], dtype=object),
            "types": pd.Series(out["types"], dtype=object),
            "presence": pd.array(out["presence"], dtype="Float64"),
            "nulls": pd.array(out["nulls"], dtype="Float64"),
            "distinct": pd.array(out["distinct"], dtype="Int64"),
            "examples": pd.Series(out["examples"], dtype=object),
            "first_seq": pd.array(out["first_seq"], dtype="Int64"),
            "objects": pd.array(out["objects"], dtype="Int64"),
            "conflict": pd.array(out["conflict"], dtype="boolean"),
            "late": pd.array(out["late"], dtype="boolean"),
        }
    )
    return cat.sort_values(["dialect", "type", "path"], kind="stable").reset_index(drop=True)


def type_names(types: dict[str, int]) -> list[str]:
    return sorted(t for t in types if t != "null")


def schema_diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Fields added, removed or retyped from catalog `a` to catalog `b` (e.g. two Rancher versions).

    Only the non-null types count: a field that was sometimes null before and never now has not changed type.
    Types that exist on one side only are reported field by field (all added or all removed).
    """

    def index(cat: pd.DataFrame) -> dict[tuple[str, str, str], list[str]]:
        return {
            (d, t, p): type_names(ty)
            for d, t, p, ty in zip(
                cat["dialect"].tolist(), cat["type"].tolist(), cat["path"].tolist(), cat["types"].tolist()
            )
        }

    left, right = index(a), index(b)
    out: list[tuple[str, str, str, str, list[str] | None, list[str] | None]] = []
    for key in sorted(left.keys() | right.keys()):
        old, new = left.get(key), right.get(key)
        if old is None:
            out.append((*key, "added", None, new))
        elif new is None:
            out.append((*key, "removed", old, None))
        elif old != new:
            out.append((*key, "type_changed", old, new))
    frame = pd.DataFrame(out, columns=["dialect", "type", "path", "change", "old_types", "new_types"])
    for c in ("dialect", "type", "path"):
        frame[c] = frame[c].astype(STRING)
    frame["change"] = pd.Categorical(frame["change"], categories=["added", "removed", "type_changed"])
    return frame


def event_names(df: pd.DataFrame) -> pd.DataFrame:
    """How often each event name carried each (dialect, type): which messages a type arrives in."""
    rows = df[object_rows(df)]
    counts = (
        rows.assign(kind_name=rows["kind"].astype(str).where(rows["kind"] != "frame", rows["name"].astype(str)))
        .groupby(["dialect", "type", "kind_name"], observed=True)
        .size()
    )
    return counts.rename("count").reset_index().rename(columns={"kind_name": "name"})


def json_schema(catalog: pd.DataFrame, dialect: str, type: str) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for one type from its catalog rows: what the stream showed, no more.

    A property is `required` when every object had it; the types are the JSON types seen.
    """
    rows = catalog[(catalog["dialect"] == dialect) & (catalog["type"] == type)]
    root: dict[str, Any] = {"type": "object", "properties": {}}
    nodes: dict[Parts, dict[str, Any]] = {(): root}
    for parts, types, presence, examples in sorted(
        zip(rows["parts"], rows["types"], rows["presence"], rows["examples"]), key=lambda r: len(r[0])
    ):
        parent = nodes.get(parts[:-1])
        if parent is None:
            continue
        node: dict[str, Any] = {}
        names = sorted(types)
        node["type"] = names[0] if len(names) == 1 else names
        if examples:
            node["examples"] = [_unjson(x) for x in examples]
        nodes[parts] = node
        if "object" in types:
            node["properties"] = {}
        if parts[-1] == ITEMS:
            parent["items"] = node
        else:
            parent.setdefault("properties", {})[parts[-1]] = node
            # Presence counts objects, not array items, so it says nothing about fields inside arrays.
            if presence >= 100.0 and ITEMS not in parts:
                parent.setdefault("required", []).append(parts[-1])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"{dialect} {type}", **root}


def _unjson(text: str) -> Any:
    try:
        return loads(text)
    except ValueError:
        return text
