"""Frame text → Event, for both dialects. Pure functions: no sockets, no clocks.

`decode_frame` is strict and raises a `ProtocolError` that names the problem; `parse_frame` never raises
and turns anything undecodable into an `anomaly` marker that keeps the raw text, so nothing is lost.
`frame_event` is the field rule alone, for a caller that has already decoded the JSON (the loader).

What a frame may be (the rule every reader of frames applies, here and nowhere else):
- UTF-8 text holding one JSON object with a non-empty string `name` (Rancher sends text frames; a binary
  frame whose bytes are such text is read the same way).
- Nested at most `MAX_NESTING` levels (objects and arrays). Kubernetes objects nest a few tens of levels at
  most; a frame deeper than that is damage or an attack, and every later step that walks an object
  (redaction, Go-style encoding, flattening for analysis) can then rely on the limit.
- Not a Rancher 1.x (Cattle) frame, and not the other dialect's frame.
- Resource events (`resource.create/change/remove`) carry their object in `data`; Norman objects name their
  schema in `data.type`.
Any other name is kept as a frame with that name: Rancher adds names (Steve's `resource.changes` came in 2.12),
and a name rancherlab does not know is news, not damage.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._json import deeper_than, dumps_text, loads
from .errors import LegacyFrameError, ProtocolError
from .event import ANOMALY, RESOURCE_EVENTS, Dialect, Event, marker
from .steve import KEY_FIELDS as _STEVE_KEY_FIELDS

# Top-level keys only Rancher 1.x (Cattle) frames carry.
_LEGACY_KEYS = frozenset({"resourceId", "replyTo", "publisher", "previousIds", "previousNames", "timeoutMillis"})
_UNQUOTED_KEY = re.compile(r"[{,]\s*[A-Za-z_$][\w$]*\s*:")

# The deepest nesting of objects and arrays a frame may have (the frame's own object is level 1). Chosen far
# above what Kubernetes objects use and below the 254 levels orjson encodes, so an accepted object can be
# redacted, re-encoded and recorded (inside a line, an envelope or two deeper) by every step after the parser.
MAX_NESTING: Final = 128
# How much of a frame over the size limit an anomaly keeps (characters).
OVERSIZE_KEEP: Final = 64 * 1024
# A driver reads frames up to this many times max_frame_bytes off the socket, so that a frame over the limit
# becomes an anomaly (`parse_frame(max_bytes=...)`) and the connection goes on; only a frame larger than that
# makes it drop the connection (WebSocket close 1009), which bounds the memory one frame can take.
SOCKET_LIMIT_FACTOR: Final = 2


def socket_limit(max_frame_bytes: int) -> int:
    """The largest frame (bytes) a driver should accept from the socket for a given `max_frame_bytes`."""
    return SOCKET_LIMIT_FACTOR * max_frame_bytes


def decode_frame(raw: str | bytes, dialect: Dialect) -> Event:
    """Decode one server → client frame. Raises `ProtocolError` on anything Rancher 2 would not send."""
    text = _text(raw)
    return frame_event(_load_object(text), dialect, text)


def frame_event(doc: Any, dialect: Dialect, text: str) -> Event:
    """The frame-field rule applied to `doc`, the already-decoded JSON of the frame `text`.

    Returns the frame's `Event` (`raw` is `text`, `data` is `doc["data"]`, not copied); raises `ProtocolError`
    for whatever the module docstring says a frame may not be (`text` must be what `doc` was decoded from). `decode_frame` is this after decoding; the loader calls it on lines it decoded itself.
    """
    if not isinstance(doc, dict):
        raise ProtocolError(f"frame is JSON but not an object (got {type(doc).__name__}); Rancher frames are objects")
    if too_deep(doc, text):
        raise ProtocolError(
            f"frame is nested more than {MAX_NESTING} levels deep; Rancher objects are far shallower, so this "
            "frame is damaged or hostile and is kept as text only"
        )
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


def recorded_data(event: Event) -> Any:
    """The `data` of a frame event whose other fields were stored beside its raw text (`Event(data=FROM_RAW)`).

    Applies the whole frame rule to `event.raw` and checks that it reads as the stored fields say. Raises
    `ProtocolError` when it does not: the raw text was damaged or edited after the frame was recorded.
    """
    text = event.raw
    try:
        if text is None:
            raise ProtocolError("it has no raw text")
        parsed = frame_event(_load_object(text), event.dialect, text)
    except ProtocolError as exc:
        raise ProtocolError(
            f"event #{event.seq} ({event.name}) cannot give its data: its raw text is not the frame it was recorded "
            f"as ({exc}); the recording was damaged or edited"
        ) from None
    if (parsed.name, parsed.type, parsed.id, parsed.revision) != (event.name, event.type, event.id, event.revision):
        raise ProtocolError(
            f"event #{event.seq} ({event.name}) cannot give its data: its raw text reads as "
            f"{parsed.name} {parsed.type}/{parsed.id} rev {parsed.revision}, not as the recorded "
            f"{event.name} {event.type}/{event.id} rev {event.revision}; the recording was edited"
        )
    return parsed.data


def parse_frame(raw: str | bytes, dialect: Dialect, *, max_bytes: int | None = None) -> Event:
    """Like `decode_frame`, but a bad frame becomes an `anomaly` marker instead of raising. Never raises.

    The marker keeps the frame's text in `raw` (bytes that are not UTF-8 appear as `\\xNN`) and says why in
    `info["error"]`; `info["legacy"]` is True for a Rancher 1.x frame. With `max_bytes`, a frame longer than
    that many bytes is an anomaly too, keeping only its first `OVERSIZE_KEEP` characters (`info["bytes"]`
    is its full size, `info["truncated"]` True), so a huge frame costs a recording no more than that.
    """
    try:
        size = _oversize(raw, max_bytes)
        if size is not None:
            return marker(
                ANOMALY,
                dialect,
                raw=_head(raw),
                error=f"frame is {size} bytes, more than the limit of {max_bytes} (max_frame_bytes); only its "
                "beginning is kept. Raise max_frame_bytes to record such frames whole",
                legacy=False,
                bytes=size,
                truncated=True,
            )
        return decode_frame(raw, dialect)
    except ProtocolError as exc:
        error, legacy = str(exc), isinstance(exc, LegacyFrameError)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not end a stream either; the text is kept
        error, legacy = f"rancherlab could not read this frame ({type(exc).__name__}); please report it", False
    return marker(ANOMALY, dialect, raw=_text(raw, strict=False), error=error, legacy=legacy)


def too_deep(doc: Any, text: str | None = None, limit: int = MAX_NESTING) -> bool:
    """True if objects and arrays nest more than `limit` levels in `doc` (a container is level 1).

    `text`, the JSON `doc` was decoded from, makes the common case (no more brackets in all than `limit`)
    cost two `str.count`s.
    """
    if text is not None and text.count("{") + text.count("[") <= limit:
        return False
    return deeper_than(doc, limit)


def _head(raw: str | bytes) -> str:
    """At most `OVERSIZE_KEEP` characters of the frame, cut before the string literal the cut would split
    (the last `"`), so no value, a secret least of all, is kept in part where redaction could miss it."""
    head = _text(raw[: OVERSIZE_KEEP * 4] if isinstance(raw, bytes) else raw[:OVERSIZE_KEEP], strict=False)
    head = head[:OVERSIZE_KEEP]
    quote = head.rfind('"')
    return head[:quote] if quote > 0 else ""


def _oversize(raw: str | bytes, max_bytes: int | None) -> int | None:
    """The frame's size in bytes if it is over `max_bytes`, else None."""
    if max_bytes is None or len(raw) * (1 if isinstance(raw, bytes) else 4) <= max_bytes:
        return None
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    return size if size > max_bytes else None


def parse_sent(raw: str | bytes, dialect: Dialect) -> Event:
    """A client → server message as a `kind="sent"` event (Steve subscribe/stop; Norman ignores them)."""
    text = _text(raw, strict=False)
    try:
        doc = _load_object(text)
        if not isinstance(doc, dict):
            raise ProtocolError(
                f"message is JSON but not an object (got {type(doc).__name__}); subscribe messages are objects"
            )
        if too_deep(doc, text):
            raise ProtocolError(f"message is nested more than {MAX_NESTING} levels deep")
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
                f"frame is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); Rancher sends "
                "UTF-8 text frames. The raw text shows the bytes that are not UTF-8 as \\xNN"
            ) from None
        return raw.decode("utf-8", errors="backslashreplace")


def _load_object(text: str) -> Any:
    try:
        return loads(text)
    except ValueError as exc:
        if "depth limit" in str(exc):
            raise ProtocolError(
                f"frame is nested more than {MAX_NESTING} levels deep (deeper than a JSON parser goes); Rancher "
                "objects are far shallower, so this frame is damaged or hostile and is kept as text only"
            ) from None
        if "\x00" in text:
            raise ProtocolError(
                "frame is not JSON: it holds a raw NUL byte (a JSON string writes it as \\u0000)"
            ) from None
        raise ProtocolError(f"frame is not JSON: {_reason(exc)}{_hint(text)}") from None


def _reason(exc: ValueError) -> str:
    msg = getattr(exc, "msg", None)
    if isinstance(msg, str):
        return f"{msg} at line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}"
    return str(exc)


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
        if not watch and revision is None and "baseType" in data and "metadata" not in data:
            # Steve echoes resourceType and sends Kubernetes objects (metadata); Norman's flat objects have baseType.
            raise ProtocolError(
                "frame looks like Norman /v3 (no resourceType or revision, an object with baseType and no "
                "metadata) but was read as Steve /v1: open it with dialect='norman'"
            )
        if oid is None and "message" in data:
            # Rancher 2.7-head sent watch errors disguised as resource.change (rancher/rancher#40131).
            info = {"error": data["message"], "disguised_error": True}
        elif revision is None:
            meta = data.get("metadata")
            rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
            revision = str(rv) if rv else None
    elif name == "resource.error":
        err = data.get("error") if isinstance(data, dict) else None
        info = {"error": err if isinstance(err, str) else dumps_text(data)}
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
