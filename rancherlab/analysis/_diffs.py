"""Field-level changes between successive versions of each object."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import pandas as pd

from ._flatten import leaves
from ._frame import STRING, categorical, objects
from ._state import object_rows

# Bookkeeping that changes on (nearly) every event without saying anything about the object:
# the revision counter, kubectl's table cells (age ticks), and server-side-apply field ownership.
DEFAULT_IGNORE: Final = ("metadata.resourceVersion", "metadata.fields", "metadata.managedFields")
_MISSING: Final = object()


def _ignored(path: str, ignore: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in ignore)


def diffs(df: pd.DataFrame, *, ignore: Iterable[str] = DEFAULT_IGNORE) -> pd.DataFrame:
    """One row per changed leaf between successive versions of an object, keyed on (type, id).

    Columns: type, id, seq, time (of the newer version), path (dotted, list items as `[i]`), old, new,
    change ("changed" / "added" / "removed"; `old`/`new` are None on the missing side). The first version
    of an object has nothing to compare with and yields no rows; a version identical to the previous one
    (e.g. Norman's double delivery) yields none either. A remove compares its last state with the one
    before, and a later re-create starts over. `ignore` drops paths equal to or under the given ones; the
    default is `DEFAULT_IGNORE`, pass `ignore=()` to see everything.
    """
    skip = tuple(ignore)
    mask = object_rows(df)
    rows = df[mask]
    prev: dict[tuple[str, str], dict[str, Any]] = {}
    out: dict[str, list[Any]] = {c: [] for c in ("type", "id", "seq", "time", "path", "old", "new", "change")}
    cols = [rows[c].tolist() for c in ("type", "id", "seq", "time", "name", "object")]
    for typ, oid, seq, time, name, obj in zip(*cols):
        if not isinstance(obj, dict):
            continue
        key = (typ, oid)
        now = {p: v for p, v in leaves(obj) if not (skip and _ignored(p, skip))}
        before = prev.get(key)
        if name == "resource.remove":
            prev.pop(key, None)
        else:
            prev[key] = now
        if before is None or before == now:
            continue
        for path in _ordered_union(before, now):
            old, new = before.get(path, _MISSING), now.get(path, _MISSING)
            if old is new or (old == new and type(old) is type(new)):
                continue
            out["type"].append(typ)
            out["id"].append(oid)
            out["seq"].append(seq)
            out["time"].append(time)
            out["path"].append(path)
            out["old"].append(None if old is _MISSING else old)
            out["new"].append(None if new is _MISSING else new)
            out["change"].append("added" if old is _MISSING else "removed" if new is _MISSING else "changed")
    return pd.DataFrame({
        "type": categorical(out["type"]),
        "id": pd.array(out["id"], dtype=STRING),
        "seq": pd.array(out["seq"], dtype="Int64"),
        "time": pd.to_datetime(pd.Series(out["time"], dtype="datetime64[us, UTC]")),
        "path": pd.array(out["path"], dtype=STRING),
        "old": objects(out["old"]),
        "new": objects(out["new"]),
        "change": pd.Categorical(out["change"], categories=["changed", "added", "removed"]),
    })


def _ordered_union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(a) + [p for p in b if p not in a]
