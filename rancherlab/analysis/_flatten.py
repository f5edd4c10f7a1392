"""Nested objects → dotted paths, and one resource type's objects as a wide DataFrame.

Type inference is done here rather than by pandas or Arrow because an undocumented stream *will* change a
field's type (null vs object, int vs string ids): Arrow raises on that and polars drops late keys (research
§E). Here a conflict only makes the column `object` and is recorded; nothing is ever lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ._frame import STRING


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (`bool` before `int`: bool is an int in Python)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def leaves(obj: Any, prefix: str = "", *, index_lists: bool = True) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) for each leaf. Lists become `[i]` steps when `index_lists`, else one leaf.

    Empty dicts and lists are leaves too, so "became empty" is a visible change.
    """
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else str(k), index_lists=index_lists)
    elif index_lists and isinstance(obj, list) and obj:
        for i, v in enumerate(obj):
            yield from leaves(v, f"{prefix}[{i}]", index_lists=index_lists)
    else:
        yield prefix, obj


def is_conflict(types: set[str] | Any) -> bool:
    """More than one non-null type; integer and number count as one (a JSON number)."""
    kinds = {"number" if t == "integer" else t for t in types if t != "null"}
    return len(kinds) > 1


def flatten(df: pd.DataFrame, type: str) -> pd.DataFrame:
    """The objects of one resource type as a wide frame: one dotted column per leaf path.

    Lists stay whole in one cell (indexing them would make the width depend on the longest list).
    The index is the index of `df`, so `df.join(flatten(df, t))` lines rows up. Columns come in order of
    first appearance. Column dtypes: Int64, Float64, boolean, Arrow string when one type was seen;
    `object` holding the original values otherwise. `attrs["conflicts"]` = {column: sorted JSON type names}
    for columns that saw more than one type; `attrs["late_keys"]` = {column: seq where first seen} for
    paths the first object of the type did not have (the ones that break sample-based schema inference).
    """
    rows = df[(df["type"] == type) & df["object"].map(lambda o: isinstance(o, dict))]
    n = len(rows)
    values: dict[str, list[Any]] = {}
    types: dict[str, set[str]] = {}
    late: dict[str, int] = {}
    seqs = rows["seq"].tolist()
    for i, obj in enumerate(rows["object"]):
        for path, v in leaves(obj, index_lists=False):
            col = values.get(path)
            if col is None:
                col = values[path] = [None] * n
                types[path] = set()
                if i > 0:
                    late[path] = int(seqs[i])
            col[i] = v
            types[path].add(json_type(v))
    out: dict[str, Any] = {}
    conflicts: dict[str, list[str]] = {}
    for path, col in values.items():
        seen = types[path] - {"null"}
        if is_conflict(seen):
            conflicts[path] = sorted(seen)
        out[path] = _column(col, seen)
    result = pd.DataFrame(out, index=rows.index)
    result.attrs["conflicts"] = conflicts
    result.attrs["late_keys"] = late
    return result


def _column(col: list[Any], seen: set[str]) -> Any:
    try:
        return _typed(col, seen)
    except (OverflowError, TypeError, ValueError):  # e.g. an integer beyond int64
        return np.fromiter(col, dtype=object, count=len(col))


def _typed(col: list[Any], seen: set[str]) -> Any:
    if seen == {"integer"}:
        return pd.array(col, dtype="Int64")
    if seen and seen <= {"integer", "number"}:
        return pd.array(col, dtype="Float64")
    if seen == {"boolean"}:
        return pd.array(col, dtype="boolean")
    if seen == {"string"}:
        return pd.array(col, dtype=STRING)
    return np.fromiter(col, dtype=object, count=len(col))
