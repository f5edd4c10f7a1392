"""Frame text → Event, for both dialects. Pure functions: no sockets, no clocks.

`decode_frame` is strict and raises a `ProtocolError` that names the problem; `parse_frame` never raises
and turns anything undecodable into an `anomaly` marker that keeps the raw text, so nothing is lost.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import LegacyFrameError, ProtocolError
from .event import ANOMALY, RESOURCE_EVENTS, Dialect, Event, marker
from .steve import KEY_FIELDS as _STEVE_KEY_FIELDS

# Top-level keys only Rancher 1.x (Cattle) frames carry.
_LEGACY_KEYS = frozenset({"resourceId", "replyTo", "publisher", "previousIds", "previousNames", "timeoutMillis"})
_UNQUOTED_KEY = re.compile(r"[{,]\s*[A-Za-z_$][\w$]*\s*:")


def decode_frame(raw: str | bytes, dialect: Dialect) -> Event:
    """Decode one server → client frame. Raises `ProtocolError` on anything Rancher 2 would not send."""
    text = _text(raw)
    doc = _load_object(text)
    if _LEGACY_KEYS & doc.keys():
        raise LegacyFrameError(
            "this is a Rancher 1.x (Cattle) frame (it has top-level "
            f"{sorted(_LEGACY_KEYS & doc.keys())}); rancherlab speaks the Rancher 2.x subscribe API "
            "(/v3/subscribe and /v1/subscribe)"
        )
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f'frame has no event name (top-level keys: {sorted(doc)}); every Rancher frame has "name"')
    data = doc.get("data")
    if dialect == "norman":
        return _norman(name, doc, data, text)
    if dialect == "steve":
        return _steve(name, doc, data, text)
    raise ProtocolError(f"unknown dialect {dialect!r}: use 'norman' (/v3) or 'steve' (/v1)")


def parse_frame(raw: str | bytes, dialect: Dialect) -> Event:
    """Like `decode_frame`, but a bad frame becomes an `anomaly` marker (raw text kept) instead of raising."""
    try:
        return decode_frame(raw, dialect)
    except ProtocolError as exc:
        return marker(
            ANOMALY, dialect, raw=_text(raw, strict=False), error=str(exc), legacy=isinstance(exc, LegacyFrameError)
        )


def parse_sent(raw: str | bytes, dialect: Dialect) -> Event:
    """A client → server message as a `kind="sent"` event (Steve subscribe/stop; Norman ignores them)."""
    text = _text(raw, strict=False)
    try:
        doc = _load_object(text)
    except ProtocolError as exc:
        return Event(0, 0, 0.0, None, dialect, "sent", "message", raw=text, info={"error": str(exc)})
    if dialect == "steve" and isinstance(doc.get("resourceType"), str):
        name = "unsubscribe" if doc.get("stop") is True else "subscribe"
        watch = {k: doc[k] for k in (*_STEVE_KEY_FIELDS, "debounceMs") if doc.get(k) not in (None, "", 0)}
        rev = doc.get("resourceVersion")
        return Event(
            0,
            0,
            0.0,
            None,
            dialect,
            "sent",
            name,
            type=doc["resourceType"],
            id=doc.get("id") or None,
            revision=str(rev) if rev not in (None, "") else None,
            raw=text,
            data=doc,
            watch=watch,
        )
    return Event(0, 0, 0.0, None, dialect, "sent", "message", raw=text, data=doc)


def _text(raw: str | bytes, *, strict: bool = True) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if strict:
            raise ProtocolError(
                f"frame is not UTF-8 text (bad byte at offset {exc.start}); Rancher sends text frames"
            ) from None
        return raw.decode("utf-8", errors="replace")


def _load_object(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"frame is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{_hint(text)}"
        ) from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"frame is JSON but not an object (got {type(doc).__name__}); Rancher frames are objects")
    return doc


def _hint(text: str) -> str:
    stripped = text.strip()
    if _UNQUOTED_KEY.search(stripped) and stripped.startswith("{"):
        return (
            " (it looks like browser DevTools object notation with unquoted keys: copy the message text "
            "itself from the Network tab, not the console's rendering)"
        )
    if stripped.startswith('"'):
        return " (it looks like a fragment: the outer { } are missing)"
    if stripped.startswith("{") and (not stripped.endswith("}") or stripped.count("{") > stripped.count("}")):
        return " (it looks cut short: the closing } is missing)"
    return ""


def _object_fields(data: Any) -> tuple[str | None, str | None]:
    if not isinstance(data, dict):
        return None, None
    typ, oid = data.get("type"), data.get("id")
    return (typ if isinstance(typ, str) else None), (oid if isinstance(oid, str) else None)


def _norman(name: str, doc: dict[str, Any], data: Any, text: str) -> Event:
    if "resourceType" in doc or "revision" in doc:
        raise ProtocolError(
            "frame has Steve fields (resourceType/revision) but was read as Norman /v3: open it with dialect='steve'"
        )
    if name == "ping":
        return Event(0, 0, 0.0, None, "norman", "frame", name, raw=text, data=data)
    if name in RESOURCE_EVENTS:
        if not isinstance(data, dict):
            raise ProtocolError(f'{name} frame has no resource object in "data" (got {type(data).__name__})')
        typ, oid = _object_fields(data)
        if typ is None:
            raise ProtocolError(
                f'{name} frame\'s object has no "type"; Norman objects always carry their schema id there'
            )
        return Event(0, 0, 0.0, None, "norman", "frame", name, type=typ, id=oid, raw=text, data=data)
    return Event(0, 0, 0.0, None, "norman", "frame", name, raw=text, data=data)


def _steve(name: str, doc: dict[str, Any], data: Any, text: str) -> Event:
    watch = {k: doc[k] for k in _STEVE_KEY_FIELDS if doc.get(k)}
    rev = doc.get("revision")
    revision = str(rev) if rev not in (None, "") else None
    info: dict[str, Any] = {}
    typ, oid = _object_fields(data)
    if name in RESOURCE_EVENTS:
        if not isinstance(data, dict):
            raise ProtocolError(f'{name} frame has no resource object in "data" (got {type(data).__name__})')
        if oid is None and "message" in data:
            # Rancher 2.7-head sent watch errors disguised as resource.change (rancher/rancher#40131).
            info = {"error": data["message"], "disguised_error": True}
        elif revision is None:
            meta = data.get("metadata")
            rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
            revision = str(rv) if rv else None
    elif name == "resource.error":
        err = data.get("error") if isinstance(data, dict) else None
        info = {"error": err if isinstance(err, str) else json.dumps(data)}
        typ, oid = doc.get("resourceType"), doc.get("id")
    elif name == "ping":
        if isinstance(data, dict) and "version" in data:
            info = {"version": data["version"]}
        typ = oid = None
    else:  # resource.start / resource.stop / resource.changes and anything newer: key echoes only
        typ, oid = doc.get("resourceType"), doc.get("id")
    return Event(
        0,
        0,
        0.0,
        None,
        "steve",
        "frame",
        name,
        type=typ,
        id=oid,
        revision=revision,
        raw=text,
        data=data,
        watch=watch or None,
        info=info,
    )
