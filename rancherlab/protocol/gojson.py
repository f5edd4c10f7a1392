"""JSON bytes as Go's encoding/json writes them, so simulated frames match Rancher's byte for byte.

Go sorts map keys, escapes `<`, `>`, `&`, U+2028 and U+2029, and otherwise writes UTF-8 as is.
Those characters can only occur inside strings, so escaping them after encoding is exact.
"""

from __future__ import annotations

from typing import Any

from ._json import dumps_text

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def go_json(value: Any) -> str:
    """Encode `value` like Go's `json.Marshal` of maps and slices (sorted keys, HTML escaping)."""
    return dumps_text(value, sort_keys=True).translate(_GO_ESCAPES)


def go_json_ordered(value: dict[str, Any], first: tuple[str, ...]) -> str:
    """Encode a struct-like object: the `first` keys in that order, then the rest sorted.

    Steve's `RawResource.MarshalJSON` writes `id`, `type`, `links`, `actions` from its struct and then
    splices in the Kubernetes object, whose own keys come out sorted.
    """
    head = [f"{go_json(k)}:{go_json(value[k])}" for k in first if k in value]
    rest = {k: v for k, v in value.items() if k not in first}
    body = go_json(rest)[1:-1] if rest else ""
    return "{" + ",".join(head + ([body] if body else [])) + "}"
