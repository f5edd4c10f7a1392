"""The generated API reference: what `rancherlab schema` writes, from what the stream actually carried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import _version
from ._diffs import diffs
from ._schema import SchemaBuilder, event_names, generic_path, json_schema, schema
from ._state import object_rows


def _changes(df: pd.DataFrame) -> dict[tuple[str, str], int]:
    counter = ChangeCounter()
    counter.add(df)
    return dict(counter.counts)


class ChangeCounter:
    """Field-level changes per (type, catalog path), counted as `diffs` counts them, batch by batch.

    Between batches `diffs` keeps what it compares the next version with, per live object, so memory grows
    with the live objects, not with the events.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._state: dict[str, Any] = {}

    def add(self, df: pd.DataFrame) -> None:
        d = diffs(df, state=self._state)
        for typ, path in zip(d["type"].astype(str).tolist(), d["path"].tolist()):
            self.counts[(typ, generic_path(path))] += 1


class ReferenceBuilder:
    """The reference built batch by batch (`add`), for recordings too big to load: `rancherlab schema` streams
    a recording through it. `result()` gives what `reference` gives for the concatenated batches."""

    def __init__(self) -> None:
        self._schema = SchemaBuilder()
        self._changes = ChangeCounter()

    def add(self, df: pd.DataFrame) -> ReferenceBuilder:
        rows = df[object_rows(df)]
        # Parse each object of the batch once, for both the catalog and the diffs (the frame holds JSON text).
        rows = rows.assign(object=np.fromiter(rows["object"].tolist(), dtype=object, count=len(rows)))
        self._schema.add(rows, events=len(df))
        self._changes.add(rows)
        return self

    def catalog(self) -> pd.DataFrame:
        """The field catalog so far (what `schema` gives for the concatenated batches)."""
        return self._schema.catalog()

    def result(self, *, sources: Sequence[str] = ()) -> dict[str, Any]:
        return _assemble(
            self._schema.catalog(), self._schema.event_names(), self._changes.counts, self._schema.events, sources
        )


def reference(df: pd.DataFrame, *, sources: Sequence[str] = ()) -> dict[str, Any]:
    """The reference as plain data (the `--format json` output): per type its events, fields and JSON Schema.

    `changes` per field counts the field-level diffs seen for it (list items folded into `[]`), as `diffs`
    counts them: a Norman object's URLs flipping between its two delivering streams are not changes.
    """
    return _assemble(schema(df), event_names(df), _changes(df), len(df), sources)


def _assemble(
    cat: pd.DataFrame,
    names: pd.DataFrame,
    changes: Mapping[tuple[str, str], int],
    events: int,
    sources: Sequence[str],
) -> dict[str, Any]:
    types: dict[str, Any] = {}
    for (dialect, typ), rows in cat.groupby(["dialect", "type"], sort=True, observed=True):
        ev = names[(names["dialect"] == dialect) & (names["type"] == typ)]
        fields = []
        for r in rows.itertuples(index=False):
            fields.append(
                {
                    "path": r.path,
                    "types": r.types,
                    "presence": round(float(r.presence), 2),
                    "nulls": round(float(r.nulls), 2),
                    "distinct": None if pd.isna(r.distinct) else int(r.distinct),
                    "examples": r.examples,
                    "first_seq": int(r.first_seq),
                    "changes": int(changes.get((typ, r.path), 0)),
                    "conflict": bool(r.conflict),
                    "late": bool(r.late),
                }
            )
        types[f"{dialect}/{typ}"] = {
            "dialect": dialect,
            "type": typ,
            "objects": int(rows["objects"].iloc[0]),
            "events": {str(n): int(c) for n, c in zip(ev["name"], ev["count"])},
            "fields": fields,
            "json_schema": json_schema(cat, dialect, typ),
        }
    return {
        "generated_by": f"rancherlab {_version.__version__}",
        "sources": list(sources),
        "events": events,
        "types": types,
    }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def reference_markdown(df: pd.DataFrame | Mapping[str, Any], *, sources: Sequence[str] = ()) -> str:
    """The reference as Markdown: a table of contents, then per type its events and a field table.

    Takes a frame, or a reference already built (`reference` or `ReferenceBuilder.result`).
    """
    ref = reference(df, sources=sources) if isinstance(df, pd.DataFrame) else df
    sources = ref["sources"]
    lines = ["# Rancher subscribe stream: observed event reference", ""]
    lines.append(
        f"Generated by {ref['generated_by']} from {ref['events']} events"
        + (" in " + ", ".join(f"`{s}`" for s in sources) if sources else "")
        + "."
    )
    lines += [
        "",
        (
            "Every field below was seen on the wire. *presence*: % of the type's objects that had it; "
            "*null*: % of occurrences that were null; *changes*: field-level changes between successive versions; "
            "⚠ conflict: more than one JSON type; ⏱ late: missing from the first object of the type."
        ),
        "",
    ]
    for key, t in ref["types"].items():
        lines.append(f"- [{t['dialect']} `{t['type']}`](#{key.replace('/', '-').replace('.', '').lower()})")
    for key, t in ref["types"].items():
        lines += [
            "",
            f'<a id="{key.replace("/", "-").replace(".", "").lower()}"></a>',
            f"## {t['dialect']} `{t['type']}`",
            "",
        ]
        events = ", ".join(f"`{n}` ×{c}" for n, c in t["events"].items())
        lines += [
            f"{t['objects']} objects, carried by {events}.",
            "",
            "| field | types | presence | null | distinct | changes | example | flags |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for f in t["fields"]:
            types = ", ".join(f"{k} ×{v}" for k, v in f["types"].items())
            flags = ("⚠ conflict " if f["conflict"] else "") + ("⏱ late" if f["late"] else "")
            example = f"`{_cell(f['examples'][0])}`" if f["examples"] else ""
            lines.append(
                f"| `{_cell(f['path'])}` | {types} | {f['presence']:.0f}% | {f['nulls']:.0f}% | "
                f"{'' if f['distinct'] is None else f['distinct']} | {f['changes'] or ''} | {example} | {flags.strip()} |"
            )
    return "\n".join(lines) + "\n"
