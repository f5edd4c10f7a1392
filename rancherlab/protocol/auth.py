"""How Rancher reads a credential and checks the Origin of an upgrade request (server side, pure).

Shared by the simulator and the replay server so both answer exactly as Rancher does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Final

UNAUTHORIZED_BODY: Final = '{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}\n'
ORIGIN_NOT_ALLOWED_BODY: Final = (
    '{"Code":{"Code":"PermissionDenied","Status":403},"Message":"origin not allowed","Cause":null,"FieldName":""}\n'
)
FORBIDDEN_BODY: Final = "Forbidden\n"  # gorilla's CheckOrigin failure: http.Error(w, "Forbidden", 403)


def token_from_request(authorization: str | None, cookie: str | None) -> str | None:
    """The `token-xxxxx:secret` a request presents, or None.

    Bearer, then Basic (URL-safe base64 `access:secret`), then the `R_SESS` cookie, which is read
    only when there is no Authorization header at all.
    """
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return value or None
        if scheme.lower() == "basic":
            try:
                decoded = base64.urlsafe_b64decode(value.encode("ascii")).decode("utf-8")
            except (binascii.Error, UnicodeError, ValueError):
                return None
            return decoded if ":" in decoded else None
        return None
    if cookie:
        try:
            jar = SimpleCookie(cookie)
        except CookieError:
            return None
        morsel = jar.get("R_SESS")
        return morsel.value if morsel and morsel.value else None
    return None


def browser_origin_rejected(headers: Mapping[str, str], host: str | None) -> bool:
    """rancher's websocket handler: browser upgrades (UA has 'mozilla') from another origin get 403 JSON."""
    connection = headers.get("Connection", "")
    if "upgrade" not in [token.strip().lower() for token in connection.split(",")]:
        return False
    if "mozilla" not in headers.get("User-Agent", "").lower():
        return False
    origin = headers.get("Origin")
    if not origin:
        return False
    return _origin_host(origin) != (host or "")


def gorilla_origin_rejected(origin: str | None, host: str | None) -> bool:
    """gorilla's default CheckOrigin, for every client: the Origin's host must equal Host, ignoring case."""
    if not origin:
        return False
    return _origin_host(origin).lower() != (host or "").lower()


def _origin_host(origin: str) -> str:
    _, sep, rest = origin.partition("://")
    return rest.split("/", 1)[0] if sep else origin
