"""The one JSON codec of rancherlab: orjson, with the standard library for what orjson refuses.

orjson is several times faster than `json` and is what every hot path (the frame parser, the recording
writer and reader, the loader) uses. It refuses a few things that are still valid JSON or valid Python
values: integers past 64 bits, strings with lone surrogates, keys that are not strings, and objects nested
deeper than its limits (1,024 levels when reading, 254 when writing). For those the standard library takes
over, with the same compact output. Neither function ever raises `RecursionError`: a value too deep for
both codecs is a `ValueError` like any other bad input.

Every module reads and writes JSON through these two functions (and `go_json` for Rancher's own byte
layout), so this choice is made once. One exception, for speed: the recording reader decodes the event lines of
frames with msgspec's typed decoder, which parses and type-checks a line in one C pass (see
`rancherlab.recording`); any line it refuses is read again through `loads`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import orjson

__all__ = ["deeper_than", "dumps", "dumps_text", "loads"]

# orjson.dumps refuses containers nested deeper than this (tests pin it); `deeper_than` relies on it.
ORJSON_MAX_DEPTH: Final = 254


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse one JSON document (UTF-8 bytes or text).

    Raises `ValueError` (a `json.JSONDecodeError` or `UnicodeDecodeError` for most problems) for anything that
    is not JSON, including `NaN`/`Infinity` and nesting deeper than the parsers go. Never `RecursionError`.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as first:
        if "depth limit" in str(first):
            raise  # deeper than 1,024 levels: the standard library would only recurse until it overflows
        try:  # lone surrogates escaped in a string (valid JSON that orjson refuses)
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            return json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise first from None
        except ValueError:
            raise first from None


def dumps(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact JSON bytes of `value` (UTF-8; no spaces; keys in insertion order unless `sort_keys`).

    `default` turns values JSON has no type for into ones it has (as in `json.dumps`). Raises `TypeError`
    for a value it cannot encode, `ValueError` for NaN/Infinity or nesting too deep for any codec.
    """
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except (TypeError, orjson.JSONEncodeError):
        # Integers past 64 bits, lone surrogates, nesting past 254 levels, non-string keys: the standard
        # library copes, writing non-ASCII as \u escapes so lone surrogates stay encodable.
        try:
            text = json.dumps(
                value, ensure_ascii=True, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys, default=default
            )
        except RecursionError:
            raise ValueError("value is nested too deeply to encode as JSON") from None
        return text.encode("ascii")


def dumps_text(value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> str:
    """`dumps` as text."""
    return dumps(value, sort_keys=sort_keys, default=default).decode("utf-8")


def deeper_than(value: Any, limit: int) -> bool:
    """True if objects and arrays nest more than `limit` levels in `value` (a container is level 1).

    Asks orjson's encoder, which refuses more than `ORJSON_MAX_DEPTH` levels, about `value` wrapped in
    `ORJSON_MAX_DEPTH - limit` lists: in C, about a quarter of the time parsing the same JSON takes. For a
    value orjson cannot encode for another reason, and for limits at or past orjson's, a walk decides.
    """
    if 0 < limit < ORJSON_MAX_DEPTH:
        wrapped = value
        for _ in range(ORJSON_MAX_DEPTH - limit):
            wrapped = [wrapped]
        try:
            orjson.dumps(wrapped)
            return False
        except orjson.JSONEncodeError as exc:
            if "ecursion" in str(exc):
                return True
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c) if isinstance(v, (dict, list))]
    return False
