"""Events → one pandas DataFrame, one row per event, with dtypes chosen for the data.

The frame is built column-wise in a single pass (lists → arrays → one `DataFrame` call): appending rows
or normalising nested JSON per row is what makes naive JSONL loading slow (research §E).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..protocol.event import DIALECTS, KINDS, RESOURCE_EVENTS, Event

# Column order of every frame; `recording` and `scope` are added by `load()` only.
COLUMNS: Final = (
    "seq",
    "time",
    "t",
    "conn",
    "kind",
    "dialect",
    "name",
    "type",
    "id",
    "revision",
    "state",
    "transitioning",
    "namespace",
    "project",
    "raw",
    "object",
    "info",
)
STRING: Final = pd.StringDtype("pyarrow")
KIND_DTYPE: Final = pd.CategoricalDtype(list(KINDS))
DIALECT_DTYPE: Final = pd.CategoricalDtype(list(DIALECTS))
# Norman's vocabulary is the richer one, so Steve's two booleans are mapped onto it.
TRANSITIONING_DTYPE: Final = pd.CategoricalDtype(["no", "yes", "error"])
# Repeated strings: categorical. Unique-ish strings: Arrow-backed.
_CATEGORICAL: Final = ("name", "type", "state", "namespace", "project", "recording", "scope")
# Columns `load()` adds after `COLUMNS`.
SOURCE_COLUMNS: Final = ("recording", "scope")
_STRINGS: Final = ("id", "revision", "raw")
# Norman keeps the project of a namespace in this annotation; Steve shows it only there.
_PROJECT_ANNOTATION: Final = "field.cattle.io/projectId"


def empty_columns() -> dict[str, list[Any]]:
    return {c: [] for c in COLUMNS}


def object_fields(dialect: str, data: Any) -> tuple[Any, Any, Any, Any]:
    """(state, transitioning, namespace, project) from where each dialect keeps them.

    Norman: top-level `state`, `transitioning` ("yes"/"no"/"error"), `namespaceId`, `projectId`.
    Steve: `metadata.state.name`, `metadata.state.error`/`.transitioning` (bools), `metadata.namespace`,
    and the project only on namespaces (annotation `field.cattle.io/projectId`).
    """
    if not isinstance(data, dict):
        return None, None, None, None
    if dialect == "norman":
        trans = data.get("transitioning")
        return (
            _str(data.get("state")),
            trans if trans in ("yes", "no", "error") else None,
            _str(data.get("namespaceId")),
            _str(data.get("projectId")),
        )
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return None, None, None, None
    st = meta.get("state")
    state = trans = None
    if isinstance(st, dict):
        state = _str(st.get("name"))
        if st.get("error") is True:
            trans = "error"
        elif st.get("transitioning") is True:
            trans = "yes"
        elif st.get("transitioning") is False or st.get("error") is False:
            trans = "no"
    project = None
    ann = meta.get("annotations")
    if data.get("type") == "namespace" and isinstance(ann, dict):
        project = _str(ann.get(_PROJECT_ANNOTATION))
    return state, trans, _str(meta.get("namespace")), project


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


Row = tuple[Any, ...]


def event_row(e: Event) -> Row:
    """One event's cells in `COLUMNS` order (the only per-event work)."""
    data = e.data
    if e.kind in ("snapshot", "resync") or (e.kind == "frame" and e.name in RESOURCE_EVENTS):
        state, trans, ns, project = object_fields(e.dialect, data)
    else:
        state = trans = project = None
        ns = (e.watch.get("namespace") or None) if e.watch else None
    return (
        e.seq,
        e.ts,
        e.t,
        e.conn,
        e.kind,
        e.dialect,
        e.name,
        e.type,
        e.id,
        e.revision,
        state,
        trans,
        ns,
        project,
        e.raw,
        data,
        dict(e.info) if e.info else None,
    )


def columns(rows: list[Row]) -> dict[str, list[Any]]:
    """Rows → column lists: one transpose at the end beats appending to 17 lists per event."""
    if not rows:
        return empty_columns()
    return {c: list(v) for c, v in zip(COLUMNS, zip(*rows))}


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while bulk-building: every parsed object is kept and no cycles are made, yet each
    full collection would rescan them all, which costs more than the parsing itself."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def frame(events: Iterable[Event], *, pings: bool = False) -> pd.DataFrame:
    """One row per event (see `COLUMNS`); pings are dropped unless `pings=True` since they carry no data.

    Dtypes: `seq`/`conn` Int64; `time` UTC datetime (from `ts`); `t` float seconds; `kind` and `dialect`
    categoricals of the fixed vocabularies; `name`, `type`, `state`, `namespace`, `project` categoricals;
    `id`, `revision`, `raw` Arrow strings; `object` (the parsed `data`) and `info` (marker fields) Python
    objects. `transitioning` is one categorical for both dialects, values "no" / "yes" / "error": Norman's
    strings as sent; Steve's `metadata.state` maps `error: true` → "error", else `transitioning: true` →
    "yes", else "no"; missing → NA.
    """
    with no_gc():
        return build(columns([event_row(e) for e in events if pings or not e.is_ping]))


def build(cols: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Column lists → DataFrame with the documented dtypes."""
    n = len(cols["seq"])
    out: dict[str, Any] = {
        "seq": pd.array(cols["seq"], dtype="Int64"),
        "time": _times(cols["time"], n),
        "t": np.asarray(cols["t"], dtype="float64") if n else np.empty(0, "float64"),
        "conn": pd.array(cols["conn"], dtype="Int64"),
        "kind": pd.Categorical(cols["kind"], dtype=KIND_DTYPE),
        "dialect": pd.Categorical(cols["dialect"], dtype=DIALECT_DTYPE),
    }
    for c in COLUMNS[6:]:
        values = cols[c]
        if c == "transitioning":
            out[c] = pd.Categorical(values, dtype=TRANSITIONING_DTYPE)
        elif c in _CATEGORICAL:
            out[c] = categorical(values)
        elif c in _STRINGS:
            out[c] = pd.array(values, dtype=STRING)
        else:
            out[c] = objects(values)
    for c in SOURCE_COLUMNS:
        if c in cols:
            out[c] = categorical(cols[c])
    return pd.DataFrame(out)


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of the same columns (batches of `build`) → one, column by column, with the documented dtypes.

    Arrow string columns are joined without copying their buffers; categoricals get the union of their
    categories, sorted, as `categorical` makes them.
    """
    if not frames:
        return build(empty_columns())
    if len(frames) == 1:
        return frames[0]
    out: dict[str, Any] = {}
    for c in frames[0].columns:
        parts = [f[c] for f in frames]
        dtypes = {p.dtype for p in parts}
        if len(dtypes) > 1 and all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
            joined = union_categoricals([p.array for p in parts], sort_categories=True)
            cats = pd.Index(joined.categories.astype(str), dtype=STRING)
            out[c] = pd.Categorical.from_codes(joined.codes, dtype=pd.CategoricalDtype(cats))
        else:
            out[c] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(out)


def categorical(values: Iterable[Any]) -> pd.Categorical:
    """Categories sorted and typed as Arrow strings, so two frames of the same values compare equal."""
    cat = pd.Categorical(values)
    cats = pd.Index(cat.categories.astype(str), dtype=STRING)
    return pd.Categorical.from_codes(cat.codes, dtype=pd.CategoricalDtype(cats))


def objects(values: list[Any]) -> np.ndarray:
    # fromiter keeps nested lists as single cells (np.array would try to broadcast them).
    return np.fromiter(values, dtype=object, count=len(values))


def _times(values: list[Any], n: int) -> pd.DatetimeIndex:
    if not n:
        return pd.DatetimeIndex([], dtype="datetime64[us, UTC]")
    first = next((v for v in values if v is not None), None)
    if isinstance(first, (int, float)):
        return pd.to_datetime(pd.array(values, dtype="Float64"), unit="s", utc=True).as_unit("us")
    # Naive datetimes are read as UTC: recordings store UTC wall-clock times.
    return pd.to_datetime(values, utc=True, format="ISO8601" if isinstance(first, str) else None).as_unit("us")
