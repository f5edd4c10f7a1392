"""Steve `/v1/subscribe` wire facts: watches and their keys, client messages, server messages."""

from __future__ import annotations

import json
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._json import loads
from .errors import UsageError
from .gojson import go_json, go_json_ordered

PING_INTERVAL: Final = 30.0  # seconds, per connection
CHANGES_MODE: Final = "resource.changes"
DEFAULT_DEBOUNCE_MS: Final = 5000
SUBSCRIBE_DATA: Final = {"type": "subscribe", "links": {}}
# The fields that identify a subscription and that the server echoes on every message of it (apiserver
# `pkg/subscribe/handler.go` `Subscribe`, `pkg/types/server_types.go` `APIEvent`); `debounceMs` completes the key
# but is never echoed.
KEY_FIELDS: Final = ("resourceType", "namespace", "id", "selector", "mode")
# Order of the top-level fields of apiserver's APIEvent (all omitempty).
_EVENT_FIELDS: Final = ("name", "namespace", "resourceType", "id", "selector", "revision", "mode")
_MODES: Final = {None: "", "": "", "changes": CHANGES_MODE, CHANGES_MODE: CHANGES_MODE}


@dataclass(frozen=True, slots=True)
class Watch:
    """One Steve subscription. Its `key` is what the server de-duplicates on and what a stop must repeat.

    Raises `UsageError` (a `ValueError`) for an empty type, an unknown mode, or `debounce_ms` without
    `mode='changes'`.
    """

    type: str
    namespace: str | None = None
    id: str | None = None
    selector: str | None = None
    mode: str | None = None
    debounce_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.type:
            raise UsageError("a Steve watch needs a resource type, e.g. Watch('pod') or Watch('apps.deployment')")
        if self.mode not in _MODES:
            raise UsageError(f"unknown watch mode {self.mode!r}: use None (full objects) or 'changes' (notifications)")
        object.__setattr__(self, "mode", _MODES[self.mode] or None)
        if self.debounce_ms is not None and self.mode is None:
            raise UsageError("debounce_ms only applies to mode='changes'")

    @property
    def key(self) -> str:
        """`resourceType/namespace/id/selector/mode/debounceMs`; the revision is not part of it."""
        return subscription_key(self.fields())

    @property
    def echo_key(self) -> str:
        """The key the server's messages for this watch echo (`echo_key` of them equals this)."""
        return echo_key(self.fields())

    def fields(self) -> dict[str, Any]:
        """The message fields that identify this watch, as the dashboard sends them (only those with values)."""
        out: dict[str, Any] = {"resourceType": self.type}
        for name, value in (
            ("namespace", self.namespace),
            ("id", self.id),
            ("selector", self.selector),
            ("mode", self.mode),
            ("debounceMs", self.debounce_ms),
        ):
            if value:
                out[name] = value
        return out

    def subscribe_message(self, revision: str | int | None = None) -> str:
        """The start message; `revision` becomes `resourceVersion` (omitted when there is none)."""
        msg = self.fields()
        if revision not in (None, ""):
            msg["resourceVersion"] = str(revision)
        return json.dumps(msg, separators=(",", ":"))

    def stop_message(self) -> str:
        return json.dumps({**self.fields(), "stop": True}, separators=(",", ":"))

    def matches(self, echoed: Mapping[str, Any] | None) -> bool:
        """Does a server message's echoed key (`Event.watch`) belong to this watch?"""
        return echoed is not None and subscription_key(echoed) == self.key


def subscription_key(fields: Mapping[str, Any]) -> str:
    """The key of a subscription from message fields, with Go's zero values for absent ones."""
    parts = [fields.get(k) or "" for k in KEY_FIELDS]
    return "/".join([*map(str, parts), str(fields.get("debounceMs") or 0)])


def echo_key(fields: Mapping[str, Any]) -> str:
    """The subscription key named by the key fields a server message echoes (`Event.watch`).

    apiserver echoes `resourceType`, `namespace`, `id`, `selector` and `mode` but not `debounceMs`, so this is the
    `subscription_key` with `debounceMs` 0: equal for every watch that differs only in its debounce.
    """
    return subscription_key({k: fields.get(k) for k in KEY_FIELDS})


def guess_plural(name: str) -> str:
    """The plural Rancher guesses for a schema id whose schema names none (`policy` → `policies`, `pod` → `pods`).

    The common cases of norman's `name.GuessPluralName` (rancher/norman `name/name.go`), which Norman schemas and
    apiserver's `pkg/types/schemas.go` use for a schema without a `PluralName`.
    """
    if name.endswith("y") and not name.endswith(("ay", "ey", "oy", "uy")):
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


def same_type(asked: str, typ: str) -> bool:
    """Do two Steve type names name the same schema? Steve resolves a type by schema id or plural, ignoring case.

    So a watch on `pods` gets objects of type `pod` and messages echoing `pods` (apiserver `pkg/types/schemas.go`
    `LookupSchema`). Without the schemas at hand the plural is the guessed one (`guess_plural`).
    """
    a, b = asked.lower(), typ.lower()
    return a == b or a == guess_plural(b) or guess_plural(a) == b


# --- server side (simulator, replay server) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A decoded client message, with Go's zero values, as apiserver's `Subscribe` struct holds it."""

    resource_type: str = ""
    resource_version: str = ""
    namespace: str = ""
    id: str = ""
    selector: str = ""
    mode: str = ""
    debounce_ms: int = 0
    stop: bool = False

    @property
    def key(self) -> str:
        return "/".join([self.resource_type, self.namespace, self.id, self.selector, self.mode, str(self.debounce_ms)])

    def echo(self) -> dict[str, str]:
        """The key fields a server stamps on every message of this subscription."""
        return {
            "namespace": self.namespace,
            "resourceType": self.resource_type,
            "id": self.id,
            "selector": self.selector,
            "mode": self.mode,
        }


_STRING_FIELDS: Final = {
    "resourceType": "resource_type",
    "resourceVersion": "resource_version",
    "namespace": "namespace",
    "id": "id",
    "selector": "selector",
    "mode": "mode",
}


def decode_subscribe(raw: str | bytes) -> Subscribe:
    """Decode a client message like Go's `json.Decoder` into `Subscribe`; raises ValueError with Go-like text."""
    try:
        doc = loads(raw)
    except ValueError as exc:  # not JSON, not UTF-8, or nested deeper than the parser goes
        raise ValueError(f"invalid character looking for beginning of value: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"json: cannot unmarshal {_go_kind(doc)} into Go value of type subscribe.Subscribe")  # noqa: TRY004 (callers catch ValueError)
    kwargs: dict[str, Any] = {}
    for field, attr in _STRING_FIELDS.items():
        if field in doc and doc[field] is not None:
            if not isinstance(doc[field], str):
                raise ValueError(
                    f"json: cannot unmarshal {_go_kind(doc[field])} into Go struct field Subscribe.{field} of type string"
                )
            kwargs[attr] = doc[field]
    if doc.get("debounceMs") is not None:
        value = doc["debounceMs"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"json: cannot unmarshal {_go_kind(value)} into Go struct field Subscribe.debounceMs of type int"
            )
        kwargs["debounce_ms"] = value
    if doc.get("stop") is not None:
        if not isinstance(doc["stop"], bool):
            raise ValueError(
                f"json: cannot unmarshal {_go_kind(doc['stop'])} into Go struct field Subscribe.stop of type bool"
            )
        kwargs["stop"] = doc["stop"]
    return Subscribe(**kwargs)


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What apiserver's subscribe handler makes of one client message, given the socket's active keys.

    `action` is "start" (a key not active yet), "stop" (an active key: remove it first, then send exactly
    one `stop_event`), "ignore" (a start for an active key, its new revision included, or a stop for a key
    that is not active) or "invalid" (not a `Subscribe`: send `reply`, a `resource.error`, and keep the socket).
    """

    action: Literal["start", "stop", "ignore", "invalid"]
    sub: Subscribe = Subscribe()  # Go's zero value when invalid
    reply: str = ""


def client_request(raw: str | bytes, active: Container[str]) -> ClientRequest:
    """Decode a client message and decide, like apiserver, what the server does with it."""
    try:
        sub = decode_subscribe(raw)
    except ValueError as exc:
        return ClientRequest("invalid", reply=error_event(str(exc)))
    if sub.stop:
        return ClientRequest("stop" if sub.key in active else "ignore", sub)
    return ClientRequest("ignore" if sub.key in active else "start", sub)


def _go_kind(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def encode_event(
    name: str, *, data: Any = None, revision: str | None = None, echo: Mapping[str, str] | None = None
) -> str:
    """One server message: APIEvent fields in their order, empty ones omitted, then the encoder's newline."""
    fields: dict[str, Any] = {"name": name, **(echo or {}), "revision": revision or ""}
    parts = [f'"{k}":{go_json(fields[k])}' for k in _EVENT_FIELDS if fields.get(k)]
    if data is not None:
        body = go_json_ordered(data, ("id", "type", "links", "actions")) if "type" in data else go_json(data)
        parts.append(f'"data":{body}')
    return "{" + ",".join(parts) + "}\n"


def ping(version: str | None) -> str:
    data = {**SUBSCRIBE_DATA, **({"version": version} if version else {})}
    return encode_event("ping", data=data)


def error_event(text: str, echo: Mapping[str, str] | None = None) -> str:
    return encode_event("resource.error", data={"error": text}, echo=echo)


def start_event(echo: Mapping[str, str]) -> str:
    return encode_event("resource.start", data=SUBSCRIBE_DATA, echo=echo)


def stop_event(echo: Mapping[str, str]) -> str:
    return encode_event("resource.stop", data=SUBSCRIBE_DATA, echo=echo)
