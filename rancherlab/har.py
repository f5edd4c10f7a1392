"""HAR import: Rancher subscribe sockets captured by Chrome DevTools or mitmproxy, as recordings.

Browsers are where most people first see this API, and their network export (HAR) keeps every
WebSocket message (`_webSocketMessages`). Each subscribe socket becomes one recording; request
headers are never copied, and the `Authorization` / `Cookie` values found anywhere in the HAR, the
password of any `user:password@` in a request URL and the value of any credential-like query parameter
(`?token=`, ...) are handed to the redactor as credentials, so they cannot leak through echoed frames either.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .protocol.event import CONNECTED, Dialect, Event, marker
from .protocol.frames import parse_frame, parse_sent
from .recording import RecordingError, RecordingHeader, RecordingWriter, subscribe_scope
from .redaction import Redactor
from .scope import CREDENTIAL_PARAMS

_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-csrf"})
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MIN_COOKIE_SECRET = 12  # characters; session ids and CSRF tokens are longer than that


class HarError(RecordingError):
    """The HAR file cannot be read, or holds no Rancher subscribe socket."""


@dataclass(frozen=True)
class _Socket:
    url: str = field(repr=False)  # may carry user info or a ?token=
    dialect: Dialect
    scope: str
    started: datetime
    messages: list[dict[str, Any]]


def import_har(
    har_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    redactor: Redactor | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write one recording per Rancher subscribe socket in the HAR; returns the files written.

    One socket: `out_path` is the recording file (or, if it is an existing folder, goes into it).
    Several: `out_path` is a folder (created if needed) with one file per socket, named after its scope.
    Redaction is on unless a disabled `redactor` is given.
    """
    har = _load(Path(har_path))
    entries = har["log"]["entries"]
    sockets = list(_sockets(entries))
    if not sockets:
        websockets = sum(1 for e in entries if isinstance(e, dict) and "_webSocketMessages" in e)
        raise HarError(
            f"{Path(har_path).name} holds no Rancher subscribe WebSocket ({len(entries)} entries, {websockets} WebSocket(s)). "
            "Record the page with the DevTools Network tab open from the start (reload it), then "
            "'Save all as HAR with content'; the sockets are /v3/subscribe, /v3/clusters/<id>/subscribe, "
            "/v3/projects/<c>:<p>/subscribe, /v1/subscribe or /k8s/clusters/<id>/v1/subscribe."
        )
    base = redactor if redactor is not None else Redactor()
    credentials = sorted(_credentials(entries))
    out = Path(out_path)
    if len(sockets) == 1 and not out.is_dir():
        targets = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        targets = _names(out, [s.scope for s in sockets])
    note = _creator(har)
    written = []
    for sock, target in zip(sockets, targets):
        r = base.derive(credentials=credentials)  # a fresh key per recording
        header = RecordingHeader.from_url(sock.url, redaction=r, started=sock.started, note=note)
        with RecordingWriter(target, header, overwrite=overwrite) as writer:
            writer.write_many(r.redact(e) for e in _events(sock))
        written.append(target)
    return written


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            har = json.load(fh)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise HarError(f"{path.name} is not a readable HAR file (JSON expected): {type(exc).__name__}") from None
    if (
        not isinstance(har, dict)
        or not isinstance(har.get("log"), dict)
        or not isinstance(har["log"].get("entries"), list)
    ):
        raise HarError(f"{path.name} is not a HAR file: it has no log.entries list")
    return har


def _sockets(entries: list[Any]) -> Iterator[_Socket]:
    found = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("_webSocketMessages"), list):
            continue
        request = entry.get("request")
        url = request.get("url") if isinstance(request, dict) else None
        if not isinstance(url, str):
            continue
        try:
            dialect, scope = subscribe_scope(url)
        except ValueError:
            continue  # another WebSocket (kubectl shell, logs, ...)
        messages = [
            m
            for m in entry["_webSocketMessages"]
            if isinstance(m, dict)
            and m.get("type") in ("send", "receive")
            and isinstance(m.get("time"), (int, float))
            and isinstance(m.get("data"), str)
        ]
        found.append(_Socket(url, dialect, scope, _started(entry, messages), messages))
    yield from sorted(found, key=lambda s: s.started)


def _started(entry: dict[str, Any], messages: list[dict[str, Any]]) -> datetime:
    text = entry.get("startedDateTime")
    if isinstance(text, str):
        try:
            started = datetime.fromisoformat(text)
            return started if started.tzinfo else started.replace(tzinfo=UTC)
        except ValueError:
            pass
    first = min((m["time"] for m in messages), default=0.0)
    return datetime.fromtimestamp(first, UTC)


def _events(sock: _Socket) -> Iterator[Event]:
    """The socket as a stream: a `connected` marker, then every message in order; `t` counts from the upgrade."""
    origin = sock.started.timestamp()
    messages = sorted(sock.messages, key=lambda m: m["time"])
    yield marker(CONNECTED, sock.dialect, seq=1, conn=0, t=0.0, ts=sock.started, source="har")
    for seq, msg in enumerate(messages, start=2):
        text = _text(msg)
        event = parse_frame(text, sock.dialect) if msg["type"] == "receive" else parse_sent(text, sock.dialect)
        when = float(msg["time"])
        yield event.stamped(seq=seq, conn=0, t=round(max(when - origin, 0.0), 6), ts=datetime.fromtimestamp(when, UTC))


def _text(msg: dict[str, Any]) -> str:
    data: str = msg["data"]
    if msg.get("opcode") == 2:  # binary: DevTools stores it base64-encoded
        try:
            return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return data
    return data


def _credentials(entries: Iterable[Any]) -> set[str]:
    """Every Authorization / Cookie value in the HAR (whole, and the token inside), for the redactor.

    Short cookie values (a UI theme such as ``R_PCS=light``) are left out: replacing every occurrence of
    a common word would damage the recording without protecting anything.
    """
    out: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for side in ("request", "response"):
            part = entry.get(side)
            if not isinstance(part, dict):
                continue
            for header in part.get("headers") or ():
                if isinstance(header, dict) and str(header.get("name", "")).lower() in _CREDENTIAL_HEADERS:
                    out.update(_header_secrets(str(header.get("name")).lower(), str(header.get("value", ""))))
            for cookie in part.get("cookies") or ():
                if isinstance(cookie, dict) and isinstance(cookie.get("value"), str):
                    out.update(_cookie_secret(str(cookie.get("name", "")), cookie["value"]))
            if side == "request":
                out.update(_url_secrets(part.get("url"), part.get("queryString")))
    return {c for c in out if len(c) >= 8}


def _url_secrets(url: Any, query_string: Any) -> set[str]:
    """The password of `user:password@` and the values of credential-like query parameters of a request."""
    out: set[str] = set()
    pairs: list[tuple[str, str]] = []
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            return out
        if password:
            out.update({password, unquote(password)})
            if parts.username:
                out.add(f"{unquote(parts.username)}:{unquote(password)}")
        pairs += parse_qsl(parts.query, keep_blank_values=True)
    for item in query_string if isinstance(query_string, list) else ():
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            pairs.append((item["name"], unquote(item["value"])))
    for name, value in pairs:
        if name.lower() in CREDENTIAL_PARAMS and value:
            out.add(value)
            scheme, _, rest = value.partition(" ")
            if rest and scheme.lower() in ("bearer", "basic"):
                out.add(rest.strip())
    return out


def _cookie_secret(name: str, value: str) -> set[str]:
    return {value} if value and (name.upper() == "R_SESS" or len(value) >= _MIN_COOKIE_SECRET) else set()


def _header_secrets(name: str, value: str) -> set[str]:
    out: set[str] = set()
    if name in ("authorization", "proxy-authorization"):
        out.add(value.strip())
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        out.add(token)
        if scheme.lower() == "basic":
            try:
                out.add(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                pass
    elif name in ("cookie", "set-cookie"):
        text = value.split(";", 1)[0] if name == "set-cookie" else value
        for pair in text.split(";"):
            cookie_name, sep, cookie_value = pair.strip().partition("=")
            if sep:
                out.update(_cookie_secret(cookie_name, cookie_value.strip().strip('"')))
    else:
        out.add(value.strip())
    return {v for v in out if v}


def _names(folder: Path, scopes: list[str]) -> list[Path]:
    seen: dict[str, int] = {}
    out = []
    for scope in scopes:
        stem = _SAFE_NAME.sub("-", scope.replace(":", "-")).strip("-") or "socket"
        seen[stem] = seen.get(stem, 0) + 1
        out.append(folder / (f"{stem}.jsonl" if seen[stem] == 1 else f"{stem}-{seen[stem]}.jsonl"))
    return out


def _creator(har: dict[str, Any]) -> str:
    creator = har["log"].get("creator")
    name = creator.get("name") if isinstance(creator, dict) else None
    version = creator.get("version") if isinstance(creator, dict) else None
    by = " ".join(str(x) for x in (name, version) if isinstance(x, str) and x and len(x) < 60)
    return f"imported from a HAR file{f' ({by})' if by else ''}"
