"""Redaction: secrets and credentials never leave the process that received them.

Applied where events enter rancherlab (the live client, HAR import), before any sink sees them.
A secret value becomes ``<redacted len=N hmac=H>``: the length, and a keyed hash (HMAC-SHA256 with a
random key that is never stored), so equal values still compare equal within one recording while
nobody can confirm a guess from the file.

Redaction is byte-faithful: a redacted event's ``raw`` is the received text with only the secret
string literals replaced (re-encoded the way they were encoded), never a re-serialisation, so
replaying a redacted recording sends what Rancher sent, minus the secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

from .protocol._json import dumps_text
from .protocol.event import Event
from .protocol.frames import parse_frame, parse_sent
from .protocol.gojson import go_json
from .protocol.secrets import (
    DRIVER_CONFIG_SUFFIX,
    KEY_ENDINGS,
    REGISTRATION_VALUE_PATHS,
    TYPE_ENDINGS,
    field_holds_secret,
    fields_parent,
    is_link_map,
    is_registration_token,
    may_hold_secret,
    secret_paths,
    type_names,
)

PLACEHOLDER: Final = "<redacted len={len} hmac={hmac}>"
HMAC_HEX_DIGITS: Final = 12

Path_ = tuple[str | int, ...]

_PEM: Final = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL
)
_B64_PEM: Final = re.compile(r"LS0tLS1CRUdJT[A-Za-z0-9+/_=-]*")
_B64_PEM_MARK: Final = "LS0tLS1CRUdJT"  # base64 of "-----BEGIN"
# Cheap tests on the text of an event that let most events skip the full walk. Only objects whose type has
# its own rules, and string-valued fields named like secrets, need it. The tests look for the endings of
# those names and values with str.find (C speed), then check the few hits. An escape other than Go's
# HTML ones could hide a name from them, so it sends the text down the full path.
_TYPE_TAILS: Final = tuple(f'{e}"' for e in TYPE_ENDINGS)  # see protocol.secrets
_KEY_TAILS: Final = (*(f'{e}"' for e in KEY_ENDINGS), f'{DRIVER_CONFIG_SUFFIX}"')  # see protocol.secrets
_CONFIG_TAIL: Final = f'{DRIVER_CONFIG_SUFFIX}"'
_ALL_TAILS: Final = tuple(dict.fromkeys(_TYPE_TAILS + _KEY_TAILS))
_STRING_VALUE_AFTER: Final = re.compile(r'\s*:\s*"(?!")')
_MAP_VALUE_AFTER: Final = re.compile(r"\s*:\s*\{")
_TYPE_KEY_BEFORE: Final = re.compile(r'"(?:type|basetype|_type|kind)"\s*:\s*"\Z')
_ESCAPE_HINT: Final = re.compile(r"\\(?:/|u(?!00(?:3[cCeE]|26)|202[89]))")
_TEXT_HINT: Final = re.compile(r"secret|passw|private|token|authconfig|spkey|apikey", re.IGNORECASE)
_JSON_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.DOTALL)
_NON_ASCII_ESCAPE: Final = re.compile(r"\\u(?!00[0-7])(?!202[89])[0-9a-fA-F]{4}")


class Redactor:
    """Replaces secret values in events; the policy is recorded in each recording's header.

    `credentials` are the caller's own credential strings (API token, cookie values): they are
    replaced wherever they appear, raw text included. `extra_paths` adds fields to redact, each
    ``[type:]dotted.path`` relative to any resource object (a JSON object with a string ``type``),
    ``*`` matching any key or index, e.g. ``cloudCredential:amazonec2credentialConfig.secretKey``.
    """

    __slots__ = (
        "_credentials",
        "_fallbacks",
        "_forms",
        "_key",
        "_paths",
        "_variants",
        "enabled",
        "extra_paths",
        "pem",
        "secrets",
        "tokens",
    )

    def __init__(
        self,
        enabled: bool = True,
        *,
        secrets: bool = True,
        tokens: bool = True,
        pem: bool = True,
        credentials: Iterable[str] = (),
        extra_paths: Iterable[str] = (),
    ) -> None:
        self.enabled = bool(enabled)
        self.secrets = bool(secrets)
        self.tokens = bool(tokens)
        self.pem = bool(pem)
        self.extra_paths: tuple[str, ...] = tuple(extra_paths)
        self._credentials: tuple[str, ...] = tuple(dict.fromkeys(c for c in credentials if isinstance(c, str) and c))
        self._key = os.urandom(32)
        self._variants = _credential_variants(self._credentials)
        self._paths = tuple(_parse_extra_path(p) for p in self.extra_paths)
        self._forms = tuple((v, _escaped_variants((v,))) for v in self._variants)
        self._fallbacks = 0  # raw texts that had to be re-serialised (should stay 0; tests check it)

    # --- configuration --------------------------------------------------------------------------

    @property
    def policy(self) -> dict[str, Any]:
        """What this redactor does, for a recording header. Never contains a credential or the key."""
        return {
            "enabled": self.enabled,
            "secrets": self.secrets,
            "tokens": self.tokens,
            "pem": self.pem,
            "credentials": len(self._credentials),
            "extra_paths": list(self.extra_paths),
            "placeholder": PLACEHOLDER.format(len="N", hmac="H" * HMAC_HEX_DIGITS),
            "hmac": f"HMAC-SHA256, first {HMAC_HEX_DIGITS} hex digits, random per-recording key (not stored)",
        }

    @classmethod
    def from_policy(cls, policy: Mapping[str, Any], *, credentials: Iterable[str] = ()) -> Redactor:
        """A redactor configured like `policy` (from a header); credentials must be given again."""
        return cls(
            bool(policy.get("enabled", True)),
            secrets=bool(policy.get("secrets", True)),
            tokens=bool(policy.get("tokens", True)),
            pem=bool(policy.get("pem", True)),
            credentials=credentials,
            extra_paths=[str(p) for p in policy.get("extra_paths", ())],
        )

    def derive(self, *, credentials: Iterable[str] = ()) -> Redactor:
        """Same policy plus more credentials, with a fresh key (one key per recording)."""
        return Redactor(
            self.enabled,
            secrets=self.secrets,
            tokens=self.tokens,
            pem=self.pem,
            credentials=(*self._credentials, *credentials),
            extra_paths=self.extra_paths,
        )

    def __repr__(self) -> str:
        return (
            f"Redactor(enabled={self.enabled}, secrets={self.secrets}, tokens={self.tokens}, pem={self.pem}, "
            f"credentials=<{len(self._credentials)} hidden>, extra_paths={self.extra_paths!r})"
        )

    # --- the work -------------------------------------------------------------------------------

    def placeholder(self, value: str) -> str:
        """`<redacted len=N hmac=H>` for `value`: same value, same placeholder (within this redactor)."""
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return PLACEHOLDER.format(len=len(value), hmac=digest[:HMAC_HEX_DIGITS])

    def redact(self, event: Event) -> Event:
        """The event with every secret replaced; the same object when there was nothing to replace."""
        if not self._active:
            return event
        changes: dict[str, Any] = {}
        raw = event.raw
        if raw is not None:
            plan = self._plan(raw)
            if plan is None and event.kind in ("frame", "sent"):
                # Every other field of a frame or sent message is read from its raw text: values are substrings of
                # it, unescaped, and the plan looks for each credential in every escaped form too. So clean raw
                # text means a clean event (nearly every frame: this is the whole cost of redacting it).
                return event
            new_raw = raw if plan is None else self._redact_raw(raw, plan)
            if new_raw is not raw:
                changes["raw"] = new_raw
                if event.kind in ("frame", "sent"):
                    # Rebuild from the redacted text exactly as the recording reader will.
                    parse = parse_frame if event.kind == "frame" else parse_sent
                    rebuilt = parse(new_raw, event.dialect)
                    if rebuilt.kind == event.kind and rebuilt.name == event.name:
                        return rebuilt.stamped(seq=event.seq, conn=event.conn, t=event.t, ts=event.ts)
            elif event.kind in ("frame", "sent"):
                # parse_frame/parse_sent derive data from raw, so clean raw means clean data.
                return self._redact_fields(event, changes, walk_data=False)
        return self._redact_fields(event, changes, walk_data=True)

    def redact_value(self, value: Any) -> Any:
        """A redacted copy of a JSON-like value (a REST response, an object): same rules as events."""
        if not self._active:
            return value
        plan = self._plan(_json_text(value))
        return value if plan is None else _Walk(self, *plan).run(value)

    def redact_text(self, text: str) -> str:
        """Free text (URLs, error messages): the caller's credentials and PEM private keys only."""
        if not self.enabled:
            return text
        out = _sub_all(text, _escaped_variants(self._variants), self.placeholder)
        if self.pem:
            out = self._scrub_pem(out)
        return out

    # --- internals ------------------------------------------------------------------------------

    @property
    def _active(self) -> bool:
        return self.enabled and (self.secrets or self.tokens or self.pem or bool(self._variants) or bool(self._paths))

    def _plan(self, text: str) -> tuple[tuple[str, ...], bool] | None:
        """None when `text` (an event's JSON) certainly holds nothing to redact; else what to look for.

        Returns (the credential variants present, whether PEM keys may be present).
        """
        escaped = "\\" in text and _ESCAPE_HINT.search(text) is not None
        if escaped:
            subs = self._variants
        else:
            subs = ()
            for variant, forms in self._forms:
                for form in forms:
                    if form in text:
                        subs = (*subs, variant)
                        break
        pem = self.pem and (escaped or "PRIVATE KEY" in text or _B64_PEM_MARK in text)
        if self._paths or subs or pem or escaped:
            return subs, pem
        if (self.secrets or self.tokens) and _hinted(text, keys=self.secrets):
            return subs, pem
        return None

    def _redact_fields(self, event: Event, changes: dict[str, Any], *, walk_data: bool) -> Event:
        if walk_data and event.data is not None:
            data = self.redact_value(event.data)
            if data is not event.data and data != event.data:
                changes["data"] = data
        for name in ("info", "watch"):
            value = getattr(event, name)
            if value:
                new = self.redact_value(dict(value))
                if new != value:
                    changes[name] = new
        for name in ("id", "type", "revision", "name"):
            value = getattr(event, name)
            if isinstance(value, str) and value and self._variants:
                new = _sub_all(value, self._variants, self.placeholder)
                if new != value:
                    changes[name] = new
        return event.replace(**changes) if changes else event

    def _redact_raw(self, raw: str, plan: tuple[tuple[str, ...], bool]) -> str:
        """Redacted raw text (`plan` is `_plan(raw)`, not None); the same object when nothing needed replacing."""
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            return self._redact_unparsed(raw)
        walk = _Walk(self, *plan)
        new_doc = walk.run(doc)
        if not walk.edits and not walk.key_edits:
            return raw
        new_raw = _apply_edits(raw, walk.edits, walk.key_edits)
        if new_raw is not None:
            try:
                if json.loads(new_raw) == new_doc:
                    return new_raw
            except (ValueError, RecursionError):
                pass
        # Never expected (duplicate keys, an encoder we do not know): safety over byte fidelity.
        self._fallbacks += 1
        return go_json(new_doc)

    def _redact_unparsed(self, raw: str) -> str:
        """Text that is not JSON (a cut or garbled frame): scrub what is recognisable, else hide it all."""
        out = self.redact_text(raw)
        if (self.secrets or self.tokens) and _TEXT_HINT.search(out):
            return self.placeholder(raw)
        return out if out != raw else raw

    def _resource_rules(
        self, obj: Mapping[str, Any], path: Path_, full: set[Path_], subs: tuple[str, ...]
    ) -> tuple[str, ...]:
        """Mark the secret fields of one resource object; returns the substrings to hide inside it."""
        names = type_names(obj)
        patterns: list[Path_] = list(secret_paths(names, secrets=self.secrets, tokens=self.tokens))
        embedded: set[str] = set()
        if self.tokens and is_registration_token(names):
            for token_path in REGISTRATION_VALUE_PATHS:
                value = _get(obj, token_path)
                if isinstance(value, str) and len(value) >= 8:
                    embedded.add(value)  # the commands and URLs that embed it
        for type_filter, pattern in self._paths:
            if type_filter is None or type_filter in names or type_filter == obj.get("type"):
                patterns.append(pattern)
        for pattern in patterns:
            for rel in _resolve(obj, pattern):
                full.add((*path, *rel))
        if embedded:
            return _longest_first((*subs, *embedded))
        return subs

    def _scrub_pem(self, text: str) -> str:
        if "PRIVATE KEY" in text:
            text = _PEM.sub(lambda m: self.placeholder(m.group()), text)
        if _B64_PEM_MARK in text:
            text = _B64_PEM.sub(
                lambda m: self.placeholder(m.group()) if _is_b64_private_key(m.group()) else m.group(), text
            )
        return text


class _Walk:
    """One pass over a parsed document: a redacted copy, and each replaced string under its original path."""

    __slots__ = ("edits", "full", "key_edits", "pem", "r", "subs")

    def __init__(self, redactor: Redactor, subs: tuple[str, ...], pem: bool) -> None:
        self.r = redactor
        self.subs = subs  # credential variants that occur in this document
        self.pem = pem
        self.full: set[Path_] = set()  # paths whose whole string value is a secret
        self.edits: dict[Path_, str] = {}
        self.key_edits: dict[Path_, str] = {}

    def run(self, node: Any) -> Any:
        return self._node(node, (), self.subs, None, False)

    def _node(self, node: Any, path: Path_, subs: tuple[str, ...], parent: str | None, links: bool) -> Any:
        """`parent`: the nearest field name above `node`; `links`: `node` is a map of server-made URLs."""
        if isinstance(node, str):
            if node and path in self.full:
                new = self.r.placeholder(node)
            else:
                new = self._scrub(node, subs)
            if new is not node:
                self.edits[path] = new
            return new
        if isinstance(node, dict):
            r = self.r
            context = parent
            if isinstance(node.get("type"), str) or node.get("kind") == "Secret":
                subs = r._resource_rules(node, path, self.full, subs)
                context = fields_parent(node, parent)
            out: dict[Any, Any] = {}
            for key, value in node.items():
                child = (*path, key)
                is_str_key = isinstance(key, str)
                child_links = False
                if isinstance(value, str):
                    if r.secrets and value and not links and is_str_key and field_holds_secret(key, context):
                        self.full.add(child)
                elif is_str_key and isinstance(value, dict):
                    child_links = is_link_map(key, node, parent)
                new_key = key
                if is_str_key and (self.subs or self.pem):
                    new_key = self._scrub(key, self.subs)
                    if new_key is not key:
                        self.key_edits[child] = new_key
                out[new_key] = self._node(value, child, subs, key if is_str_key else parent, child_links)
            return out
        if isinstance(node, list):
            return [self._node(v, (*path, i), subs, parent, False) for i, v in enumerate(node)]
        return node

    def _scrub(self, text: str, subs: tuple[str, ...]) -> str:
        """Embedded secrets (credentials, registration tokens, PEM keys) inside one string; `text` itself if none."""
        out = _sub_all(text, subs, self.r.placeholder) if subs else text
        if self.pem:
            out = self.r._scrub_pem(out)
        return out if out != text else text


def _hinted(text: str, *, keys: bool) -> bool:
    """Does JSON text have a sensitive object type, or (`keys`) a string field that may hold a secret?"""
    low = text.lower()
    if len(low) != len(text):
        return True  # lower-casing moved the offsets (rare non-ASCII): look closer
    for tail in _ALL_TAILS if keys else _TYPE_TAILS:
        i = low.find(tail)
        while i >= 0:
            end = i + len(tail)
            start = low.rfind('"', 0, i) + 1  # the literal this tail ends
            if start >= 2 and low[start - 2] == "\\":
                return True  # an escaped quote: the literal is not what it seems, look closer
            if tail in _TYPE_TAILS and _TYPE_KEY_BEFORE.search(low, max(0, start - 48), start):
                return True
            if keys and tail in _KEY_TAILS:
                if _STRING_VALUE_AFTER.match(low, end):
                    if may_hold_secret(text[start : end - 1]):
                        return True
                elif tail == _CONFIG_TAIL and _MAP_VALUE_AFTER.match(low, end):
                    return True  # a driver's config map: its fields are secret by where they are
            i = low.find(tail, end)
    return False


def _json_text(value: Any) -> str:
    return dumps_text(value, default=str)


def _get(obj: Any, path: Path_) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _resolve(node: Any, pattern: Path_) -> Iterator[Path_]:
    """Concrete paths in `node` that `pattern` (with `*` wildcards) names."""
    if not pattern:
        yield ()
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(node, dict):
        keys: Iterable[Any] = node.keys() if head == "*" else ((head,) if head in node else ())
        for key in keys:
            for tail in _resolve(node[key], rest):
                yield (key, *tail)
    elif isinstance(node, list):
        if head == "*":
            indexes: Iterable[int] = range(len(node))
        elif isinstance(head, str) and head.isdigit() and int(head) < len(node):
            indexes = (int(head),)
        else:
            indexes = ()
        for i in indexes:
            for tail in _resolve(node[i], rest):
                yield (i, *tail)


def _parse_extra_path(spec: str) -> tuple[str | None, Path_]:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("an extra redaction path looks like 'field.sub.*.name' or 'type:field.sub'")
    type_filter, sep, dotted = spec.partition(":")
    if not sep:
        type_filter, dotted = "", spec
    parts = tuple(p for p in dotted.split(".") if p)
    if not parts:
        raise ValueError(f"extra redaction path {spec!r} names no field")
    return (type_filter or None), parts


def _credential_variants(credentials: tuple[str, ...]) -> tuple[str, ...]:
    """Each credential as it may appear in text: as is, its secret half, base64 (Basic auth), URL-quoted."""
    out: set[str] = set()
    for cred in credentials:
        out.add(cred)
        _, sep, secret = cred.partition(":")
        if sep and len(secret) >= 6:
            out.add(secret)
        encoded = cred.encode("utf-8", "surrogatepass")
        for b64 in (base64.b64encode(encoded), base64.urlsafe_b64encode(encoded)):
            out.add(b64.decode("ascii"))
            out.add(b64.decode("ascii").rstrip("="))
        out.add(urllib.parse.quote(cred, safe=""))
    return _longest_first(out)


@lru_cache(maxsize=64)
def _escaped_variants(variants: tuple[str, ...]) -> tuple[str, ...]:
    """Variants plus their JSON-escaped forms, for searching raw text."""
    out = set(variants)
    for v in variants:
        for encoded in (_go_literal(v), json.dumps(v), json.dumps(v, ensure_ascii=False)):
            out.add(encoded[1:-1])
    return _longest_first(out)


def _longest_first(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}, key=lambda v: (-len(v), v)))


@lru_cache(maxsize=256)
def _alternation(subs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(s) for s in subs))


def _sub_all(text: str, subs: tuple[str, ...], placeholder: Any) -> str:
    if not subs or not any(s in text for s in subs):
        return text
    return _alternation(subs).sub(lambda m: placeholder(m.group()), text)


def _is_b64_private_key(text: str) -> bool:
    try:
        decoded = base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text) else None
        )
    except (binascii.Error, ValueError):
        return False
    return b"PRIVATE KEY" in decoded


def _go_literal(value: str) -> str:
    try:
        return go_json(value)
    except (TypeError, ValueError):
        return json.dumps(value)


def _encode_like(value: str, original: str) -> str:
    """Encode `value` as a JSON string literal in the style of the literal it replaces."""
    if any(ch in original for ch in "<>&"):
        return dumps_text(value)  # an encoder that does not HTML-escape
    if _NON_ASCII_ESCAPE.search(original):
        return json.dumps(value)  # an ASCII-only encoder (Python's json, JavaScript tools)
    return _go_literal(value)  # Go's encoding/json: what Rancher sends


def _apply_edits(raw: str, edits: Mapping[Path_, str], key_edits: Mapping[Path_, str]) -> str | None:
    """Replace the string literals at the given paths in `raw`, leaving every other byte alone.

    Returns None when the text has duplicate keys: a parser keeps only one of them, so the other
    could hide a secret this pass never saw.
    """
    out: list[str] = []
    pos = 0
    # One entry per open container: [is_object, current key or index, expecting a key, keys seen]
    stack: list[list[Any]] = []
    for m in _JSON_TOKEN.finditer(raw):
        tok = m.group()
        first = tok[0]
        if first == '"':
            top = stack[-1] if stack else None
            if top is not None and top[0] and top[2]:
                key = json.loads(tok) if "\\" in tok else tok[1:-1]
                if key in top[3]:
                    return None
                top[3].add(key)
                top[1] = key
                top[2] = False
                if key_edits:
                    where = tuple(entry[1] for entry in stack)
                    if where in key_edits:
                        out.append(raw[pos : m.start()])
                        out.append(_encode_like(key_edits[where], tok))
                        pos = m.end()
            else:
                where = tuple(entry[1] for entry in stack)
                if where in edits:
                    out.append(raw[pos : m.start()])
                    out.append(_encode_like(edits[where], tok))
                    pos = m.end()
        elif first == "{":
            stack.append([True, None, True, set()])
        elif first == "[":
            stack.append([False, 0, False, None])
        elif first in "}]":
            if not stack:
                return None
            stack.pop()
        elif first == ",":
            if not stack:
                return None
            top = stack[-1]
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
    out.append(raw[pos:])
    return "".join(out)
