"""Field-level changes between successive versions of each object."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import pandas as pd

from ..protocol import counts
from ._flatten import leaves
from ._frame import STRING, categorical, objects
from ._state import object_rows

# Bookkeeping that changes on (nearly) every event without saying anything about the object:
# the revision counter, kubectl's table cells (age ticks), and server-side-apply field ownership.
# A path is ignored when it equals an entry or lies under it (`p.…` or `p[…]`), never by plain prefix:
# "metadata.fields" hides "metadata.fields[3]", not "metadata.fieldsV2".
DEFAULT_IGNORE: Final = ("metadata.resourceVersion", "metadata.fields", "metadata.managedFields")
# URLs the server derives from the schema that delivered the object (`actionLinks` with X-API-Action-Links).
URL_FIELDS: Final = ("links", "actions", "actionLinks")
_MISSING: Final = object()

Key = tuple[str, str]
Leaves = dict[str, Any]


def _ignored(path: str, ignore: tuple[str, ...]) -> bool:
    exact, under = _ignore_rule(ignore)
    return path in exact or path.startswith(under)


@functools.lru_cache(maxsize=64)
def _ignore_rule(ignore: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The paths ignored exactly, and the prefixes (`p.`, `p[`) of what lies under them: two C-level tests."""
    return frozenset(ignore), tuple(q for p in ignore for q in (p + ".", p + "["))


def delivering_stream(obj: dict[str, Any]) -> str | None:
    """The collection an object came through: the path of its `links.self` without the id.

    Norman sends a deployment from its `deployment` schema (`…/deployments/<id>`) and from the `workload`
    aggregate (`…/workloads/<id>`) with the same type and id; this tells the two deliveries apart.
    """
    links = obj.get("links")
    url = links.get("self") if isinstance(links, dict) else None
    if not isinstance(url, str):
        return None
    path = unquote(urlsplit(url).path).rstrip("/")
    oid = obj.get("id")
    if isinstance(oid, str) and oid and path.endswith("/" + oid):
        return path[: -len(oid) - 1]
    return path.rpartition("/")[0]


def diffs(
    df: pd.DataFrame, *, ignore: Iterable[str] = DEFAULT_IGNORE, state: dict[str, Any] | None = None
) -> pd.DataFrame:
    """One row per changed leaf between successive versions of an object, keyed on (type, id).

    Columns: type, id, seq, time (of the newer version), path (dotted, list items as `[i]`), old, new,
    change ("changed" / "added" / "removed"; `old`/`new` are None on the missing side). The first version
    of an object has nothing to compare with and yields no rows; a version identical to the previous one
    yields none either. A remove compares its last state with the one before, and a later re-create starts
    over. `ignore` drops paths equal to or under the given ones; the default is `DEFAULT_IGNORE`, pass
    `ignore=()` to see everything.

    Norman's double delivery: a deployment arrives from the `deployment` stream and again from the `workload`
    stream, the data the same but every `links`/`actions` URL under `/deployments/` or `/workloads/`
    (`delivering_stream`). The data fields are compared with the previous version whichever stream it came
    from, so a change shows once, at its first delivery; the URL fields with the previous version *from
    the same stream*, so the alternation is not a change while a real one (an action appearing, an update
    link granted) still shows. Ignoring `links`/`actions` outright would hide those.

    `state`: pass the same (initially empty) dict with each batch of a frame, in order, to diff a recording
    batch by batch (`rancherlab schema` streams this way); it holds what is compared with next, per live object.

    Steve's `count` object: each watch event carries only the types whose count changed, so every version is
    the update merged into the one before (`protocol.counts.merge`); a type an update leaves out is unchanged,
    not removed.
    """
    skip = tuple(ignore)
    mask = object_rows(df)
    rows = df[mask]
    state = {} if state is None else state
    prev: dict[Key, Leaves] = state.setdefault("prev", {})
    prev_stream: dict[Key, str | None] = state.setdefault("prev_stream", {})
    urls_by_stream: dict[Key, dict[str | None, Leaves]] = state.setdefault("urls_by_stream", {})
    out: dict[str, list[Any]] = {c: [] for c in ("type", "id", "seq", "time", "path", "old", "new", "change")}
    held_counts: dict[Key, dict[str, Any]] = state.setdefault("held_counts", {})
    cols = [rows[c].tolist() for c in ("type", "id", "seq", "time", "name", "object", "kind", "dialect")]
    for typ, oid, seq, time, name, obj, kind, dialect in zip(*cols):
        if not isinstance(obj, dict):
            continue
        key = (typ, oid)
        if dialect == "steve" and counts.is_count(typ):
            # a count event holds only the types that changed: compare what a client holds, the merged map
            held = held_counts.get(key)
            obj = counts.merge(held, obj) if kind == "frame" and held is not None else obj
            if name == "resource.remove":
                held_counts.pop(key, None)
            else:
                held_counts[key] = obj
        now = {p: v for p, v in leaves(obj) if not (skip and _ignored(p, skip))}
        stream = delivering_stream(obj)
        urls = {p: v for p, v in now.items() if _ignored(p, URL_FIELDS)}
        before = prev.get(key)
        if before is not None and prev_stream.get(key) != stream:
            # Another stream of the double delivery: its URLs compare with what this stream sent last.
            same = urls_by_stream.get(key, {}).get(stream, urls)
            before = {**{p: v for p, v in before.items() if not _ignored(p, URL_FIELDS)}, **same}
        if name == "resource.remove":
            for memo in (prev, prev_stream, urls_by_stream):
                memo.pop(key, None)
        else:
            prev[key] = now
            prev_stream[key] = stream
            urls_by_stream.setdefault(key, {})[stream] = urls
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
    return pd.DataFrame(
        {
            "type": categorical(out["type"]),
            "id": pd.array(out["id"], dtype=STRING),
            "seq": pd.array(out["seq"], dtype="Int64"),
            "time": pd.to_datetime(pd.Series(out["time"], dtype="datetime64[us, UTC]")),
            "path": pd.array(out["path"], dtype=STRING),
            "old": objects(out["old"]),
            "new": objects(out["new"]),
            "change": pd.Categorical(out["change"], categories=["changed", "added", "removed"]),
        }
    )


def _ordered_union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(a) + [p for p in b if p not in a]
