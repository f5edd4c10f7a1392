"""The current state of the world from an event frame: the latest version of every live object."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..protocol import counts
from ..protocol.event import RESOURCE_EVENTS, RESYNC_FINISHED, RESYNC_STARTED
from ..protocol.objects import REMOVED_STATES, Key, is_removal

__all__ = ["REMOVED_STATES", "is_removal", "object_rows", "state", "upto"]


@dataclass
class _Resync:
    start: int
    types: set[str]
    listed: set[Key] = field(default_factory=set)


def upto(df: pd.DataFrame, at: int | datetime | pd.Timestamp | str | None) -> pd.DataFrame:
    """Rows at or before `at` (a seq number, or a point in time)."""
    if at is None:
        return df
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        return df[(df["seq"] <= at).fillna(False)]
    ts = pd.Timestamp(at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return df[(df["time"] <= ts).fillna(False)]


def object_rows(df: pd.DataFrame) -> np.ndarray:
    """Mask of rows that carry a resource object with a type and an id (snapshot, resync, create/change/remove)."""
    kind = df["kind"].astype(object)
    carries = kind.isin(("snapshot", "resync")) | ((kind == "frame") & df["name"].astype(object).isin(RESOURCE_EVENTS))
    return (carries & df["type"].notna() & df["id"].notna()).to_numpy(dtype=bool)


def state(df: pd.DataFrame, at: int | datetime | pd.Timestamp | str | None = None) -> pd.DataFrame:
    """The latest row per (type, id) still alive at `at` (default: the end), sorted by type and id.

    Rows are applied in frame order (the recording's order). Objects are keyed on their own `type` and
    `id`, and applying the same version twice is harmless, so Norman's double delivery of a deployment
    (from the `deployment` and the `workload` streams, same type and id) yields one object. An object is
    gone after `resource.remove` (both dialects) or a Norman change whose `state` is removed / purging /
    purged. Resync: between the markers `resync.started` and `resync.finished` of a connection, the `resync`
    rows are the full truth for their types (plus any listed in the start marker's `info["types"]`): an
    object of such a type that was not re-listed, and was not changed by a live frame during the resync,
    was deleted while we were not looking, and is dropped. Snapshot rows are plain upserts.
    Steve's `count` object is the exception to "latest row wins": its watch events carry only the types whose
    count changed, so its `object` is every update merged into the last listed one (`protocol.counts.merge`).
    """
    rows = upto(df, at)
    latest: dict[Key, int] = {}
    open_resyncs: dict[Any, _Resync] = {}
    has_obj = object_rows(rows)
    merged: dict[Key, Any] = {}  # merge-rule objects (Steve's `count`) as a client holds them
    cols = [rows[c].tolist() for c in ("kind", "name", "type", "id", "dialect", "state", "conn", "info")]
    for pos, (kind, name, typ, oid, dialect, st, conn, info) in enumerate(zip(*cols)):
        if kind == "marker":
            if name == RESYNC_STARTED:
                types = (info or {}).get("types") or ()
                open_resyncs[conn] = _Resync(pos, {t for t in types if isinstance(t, str)})
            elif name == RESYNC_FINISHED and conn in open_resyncs:
                _finish(latest, open_resyncs.pop(conn))
            continue
        if not has_obj[pos]:
            continue
        key = (typ, oid)
        if kind == "resync" and conn in open_resyncs:
            window = open_resyncs[conn]
            window.types.add(typ)
            window.listed.add(key)
        if is_removal(name, dialect, st):
            latest.pop(key, None)
            merged.pop(key, None)
        else:
            latest[key] = pos
            if dialect == "steve" and counts.is_count(typ):
                merged[key] = _merge_count(merged.get(key), kind, rows["object"].iat[pos])
    picked = rows.iloc[sorted(latest.values())]
    if merged:
        picked = picked.copy()
        held = [merged.get(k) for k in zip(picked["type"].tolist(), picked["id"].tolist())]
        values = [o if m is None else m for o, m in zip(picked["object"].tolist(), held)]
        picked["object"] = np.fromiter(values, dtype=object, count=len(values))
    return picked.sort_values(["type", "id"], kind="stable").reset_index(drop=True)


def _merge_count(held: Any, kind: Any, obj: Any) -> Any:
    """A listed count object (snapshot, resync) is the whole map; a watch event merges into what is held."""
    if not isinstance(obj, dict) or kind != "frame" or not isinstance(held, dict):
        return obj
    return counts.merge(held, obj)


def _finish(latest: dict[Key, int], window: _Resync) -> None:
    for key, pos in list(latest.items()):
        if key[0] in window.types and key not in window.listed and pos < window.start:
            del latest[key]
