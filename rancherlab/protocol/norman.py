"""Norman `/v3/subscribe` wire facts: frame bytes as norman's `writeData` writes them, and the ping."""

from __future__ import annotations

from typing import Any, Final

from .gojson import go_json

PING: Final = '{"name":"ping","data":{}}'
PING_INTERVAL: Final = 5.0  # seconds, `time.NewTicker(5 * time.Second)` in norman's handler
NO_TYPES_BODY: Final = (
    '{"baseType":"error","code":"NotFound","message":"no resources types matched","status":404,"type":"error"}\n'
)


def resource_frame(name: str, obj: dict[str, Any]) -> str:
    """`{"name":…,"data":` + the object (sorted keys, HTML-escaped) + the encoder's newline + `}`."""
    return f'{{"name":"{name}","data":{go_json(obj)}\n}}'


def change_frame(obj: dict[str, Any]) -> str:
    return resource_frame("resource.change", obj)


def remove_frame(obj: dict[str, Any]) -> str:
    return resource_frame("resource.remove", obj)
