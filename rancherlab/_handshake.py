"""What a failed subscribe handshake means: each way the upgrade can fail becomes a typed error that says what to
do, or `Retry` when another attempt may succeed.

The stream calls `Handshake.error(exc)` with whatever the websockets client raised while connecting. Facts that
only REST can tell (does the cluster exist, which types does the scope offer) are asked here, through the
stream's REST client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidProxy, InvalidStatus, InvalidURI
from websockets.http11 import Response

from .credentials import Server
from .errors import (
    AuthenticationError,
    ClusterNotFound,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    ScopeError,
    ServerUnavailableError,
    TLSError,
    UnknownTypeError,
    UpgradeRefusedError,
    UsageError,
    type_list,
)
from .protocol.event import Dialect
from .rest import RestClient, find_ssl_error, status_error, tls_error
from .scope import Scope


class Retry(ServerUnavailableError):
    """A connection failure worth another attempt (network error, 5xx, a garbled handshake).

    The stream retries it itself; it reaches a caller only inside `ConnectGaveUpError`'s message."""


# Answers a proxy or load balancer gives when it cannot reach Rancher: worth another attempt.
_GATEWAY: Final = {
    500: "the server failed",
    502: "a proxy or load balancer got no valid answer from Rancher (Rancher down or restarting, or the proxy's "
    "upstream misconfigured)",
    503: "the service is unavailable (Rancher starting or overloaded, or no healthy Rancher behind the load balancer)",
    504: "a proxy or load balancer timed out waiting for Rancher",
}
_PROXY_FIX: Final = (
    "Every proxy, ingress or load balancer between here and Rancher must pass WebSocket upgrades over HTTP/1.1 "
    '(nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; '
    "an AWS classic ELB needs TCP/SSL listeners, not HTTP/HTTPS); or connect to Rancher by a route without it"
)
_LOGIN_WORDS: Final = ("login", "log in", "sign in", "signin", "sso", "oauth", "saml", "password", "authenticate")
_BODY_LIMIT: Final = 4096


@dataclass(frozen=True, slots=True)
class Refusal:
    """An HTTP answer to the upgrade request instead of `101 Switching Protocols`, and what it says of who sent it.

    `headers` has lower-case names; `body` is the start of the body (at most 4 KiB), decoded leniently.
    """

    status: int
    reason: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    redirected_from: int | None = None  # the 3xx status when this answer is where a redirect led

    @classmethod
    def from_response(cls, response: Response, redirected_from: int | None = None) -> Refusal:
        headers = {k.lower(): v for k, v in response.headers.raw_items()}
        body = response.body[:_BODY_LIMIT].decode("utf-8", "replace") if response.body else ""
        return cls(response.status_code, response.reason_phrase, headers, body, redirected_from)

    @property
    def html(self) -> bool:
        """Is the body a web page (a proxy's, a web server's or a login form), not an API answer?"""
        kind = self.headers.get("content-type", "").lower()
        return "html" in kind or self.body.lstrip()[:1] == "<"

    @property
    def rancher(self) -> bool:
        """Did Rancher itself answer? Its auth header, its JSON error shapes, or gorilla's refusal of a non-upgrade."""
        if "x-api-cattle-auth" in self.headers or "sec-websocket-version" in self.headers:
            return True
        head = self.body.lstrip()[:200]
        return head.startswith("{") and any(
            marker in head for marker in ('"type":"error"', '"baseType":"error"', '"Code":{')
        )

    @property
    def hop(self) -> str | None:
        """Who answered, as the headers tell: Rancher, or a named proxy/web server (None: unknown)."""
        if "sec-websocket-version" in self.headers:
            return "Rancher's WebSocket handler"
        if "x-api-cattle-auth" in self.headers:
            return "Rancher"
        names = [v for v in (self.headers.get("server"), self.headers.get("via")) if v]
        return " / ".join(_clip(v, 60) for v in names) if names else None

    @property
    def login(self) -> bool:
        """Does the page or the redirect look like a login?"""
        where = (self.headers.get("location", "") + " " + self.body[:_BODY_LIMIT]).lower()
        return any(w in where for w in _LOGIN_WORDS)


@dataclass(frozen=True, slots=True)
class Facts:
    """What REST said about the server: did Rancher's API answer at this URL, and which version it is."""

    rest_answered: bool = False
    version: str | None = None

    def said(self) -> str:
        if self.version:
            return f"Rancher's REST API answers at this URL (Rancher {self.version})"
        if self.rest_answered:
            return "Rancher's REST API answers at this URL"
        return "Rancher's REST API does not answer at this URL"


def diagnose(
    refusal: Refusal, facts: Facts, *, what: str, scope: Scope, base: str, secrets: Sequence[str] = ()
) -> RancherlabError | Retry:
    """The error for a refused upgrade that is not Rancher's own verdict (auth, unknown type or cluster).

    `what` names the attempt ("subscribing to global at https://r"); `secrets` are scrubbed from anything quoted
    from the answer. The message gives the status, who answered, the likely cause and what to do, and never a hint
    that `facts` contradict. A gateway error (500, 502, 503, 504) is `Retry`; everything else is final
    (`UpgradeRefusedError`, or `TLSError` for a plain request to a TLS port).
    """
    status = refusal.status
    shown = f"HTTP {status}" + (f" ({refusal.reason})" if refusal.reason else "")
    by = f" from {refusal.hop}" if refusal.hop else ""
    page = " (an HTML page)" if refusal.html else ""
    said = facts.said()
    body = _scrub(refusal.body, secrets)
    lowered = body.lower()

    if status >= 500:
        cause = _GATEWAY.get(status, "the server failed")
        detail = f": {_clip(_message(body), 160)}" if refusal.rancher and _message(body) else ""
        return Retry(f"HTTP {status}{by}: {cause}{detail}")
    if "plain http request was sent to https port" in lowered:
        return TLSError(
            f"{what}: {shown}{by}: a plain http:// request reached a TLS port (a TLS-terminating proxy or load "
            f"balancer). Use the https:// URL of the server"
        )
    if 300 <= status < 400 or refusal.redirected_from is not None:
        location = _location(refusal.headers.get("location", ""), secrets)
        first = refusal.redirected_from or status
        if location.startswith("https://") and base.startswith("http://") and not refusal.login:
            todo = f"the server wants TLS: use the https:// URL ({_origin(location)})"
        elif refusal.login:
            todo = (
                "an authenticating proxy (single sign-on) in front of Rancher sends requests without its session to "
                "its login page, which a subscribe socket cannot pass. Connect by a route the proxy does not guard, "
                "or give the proxy the credential it expects"
            )
        else:
            todo = "give the Rancher server URL (the address the UI loads from, without /dashboard)"
        to = f" to {location}" if location else ""
        return UpgradeRefusedError(
            f"{what}: got HTTP {first} instead of 101 Switching Protocols, a redirect{to}{by}; {said}. Likely cause: "
            f"{todo}"
        )
    if 200 <= status < 300:
        if refusal.login:
            cause = (
                "A login page answered: an authenticating proxy (single sign-on) in front of Rancher intercepts "
                "requests without its session. Connect by a route the proxy does not guard, or give the proxy the "
                "credential it expects"
            )
        elif facts.rest_answered:
            cause = f"{said}, so the URL is right: a proxy or load balancer in between does not forward WebSocket "
            cause += f"upgrades{page}. {_PROXY_FIX}"
        else:
            cause = (
                f"Something between you and Rancher (a proxy or load balancer) does not forward WebSocket upgrades, "
                f"or the URL is not the Rancher server{page}. Check the URL; {_PROXY_FIX}"
            )
        return UpgradeRefusedError(f"{what}: got HTTP {status} instead of 101 Switching Protocols{by}. {cause}")
    if status == 400:
        if "sec-websocket-version" in refusal.headers or "websocket" in lowered or "upgrade" in lowered:
            cause = (
                "Rancher received the request without its upgrade headers: a proxy or ingress in between dropped "
                "'Connection: upgrade' / 'Upgrade: websocket' (rancher/rancher-docs#817)"
            )
        elif facts.rest_answered:
            cause = f"{said}, so the URL is right; a proxy in between most likely dropped the upgrade headers"
        else:
            cause = f"{said}: the URL may not be the Rancher server, or a proxy in between dropped the upgrade headers"
        return UpgradeRefusedError(f"{what}: {shown}{by}{page}. {cause}. {_PROXY_FIX}")
    if status == 404:
        if facts.rest_answered:
            cause = (
                f"{said}, but its subscribe path does not: a proxy or ingress in front of Rancher routes "
                f"REST but not {scope.subscribe_path} or not its WebSocket upgrade (rancher/rancher#38584). Check "
                f"its rules for that path. {_PROXY_FIX}"
            )
        else:
            cause = (
                f"{said}: this is probably not the Rancher server URL. Give the address the Rancher UI loads from "
                "(without /dashboard or a path), e.g. https://rancher.example.com"
            )
        return UpgradeRefusedError(f"{what}: {shown}{by}{page} for {scope.subscribe_path}. {cause}")
    if status == 405:
        cause = "the hop that answered does not take a GET upgrade on this path; Rancher does, so a proxy or another "
        cause += f"web server answered. {said}. {_PROXY_FIX}"
        return UpgradeRefusedError(f"{what}: {shown}{by}{page}: {cause}")
    if status == 426:
        cause = (
            "the hop that answered wants another protocol: a proxy that requires TLS or HTTP/2 to Rancher, or a "
            "plain http:// URL where https:// is needed. Use the https:// URL; the proxy must speak HTTP/1.1 "
            f"upgrades to Rancher. {said}"
        )
        return UpgradeRefusedError(f"{what}: {shown}{by}{page}: {cause}")
    detail = f" ({_clip(_message(body), 200)})" if _message(body) else ""
    return UpgradeRefusedError(
        f"{what}: {shown}{by}{page} instead of 101 Switching Protocols{detail}. {said}. {_PROXY_FIX}"
    )


def _message(body: str) -> str:
    text = body.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text.split("\n", 1)[0]) if "\n" in text else json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in ("message", "Message"):
                if isinstance(doc.get(key), str):
                    return str(doc[key])
    return "" if text.startswith("<") else " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _location(value: str, secrets: Sequence[str]) -> str:
    """A redirect target as shown: scheme, host and path only (a query or fragment may carry state or a token)."""
    if not value:
        return ""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    shown = f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme and host else parts.path
    return _clip(_scrub(shown, secrets), 200)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


@dataclass(slots=True)
class Handshake:
    """The facts a refused handshake is judged by: where we connected, in which scope, for which types."""

    server: Server
    scope: Scope
    dialect: Dialect
    types: Sequence[str]
    rest: RestClient

    async def error(self, exc: BaseException) -> BaseException:
        """The error to raise for what `websockets.connect` raised: typed and final, or `Retry`."""
        if isinstance(exc, InvalidStatus):
            return await self.refused(Refusal.from_response(exc.response))
        redirect = _redirect_behind(exc)
        if redirect is not None:  # a redirect websockets would not follow (to http(s)://, or a TLS downgrade)
            return await self.refused(Refusal.from_response(redirect.response))
        if isinstance(exc, InvalidURI):
            return ScopeError(f"not a valid subscribe URL: {exc}")
        if isinstance(exc, InvalidProxy):
            return UsageError(f"the proxy configured in the environment is not usable: {exc}")
        if isinstance(exc, InvalidMessage):
            return Retry(f"the server closed or garbled the handshake ({exc})")
        if isinstance(exc, InvalidHandshake):
            return UpgradeRefusedError(
                f"the WebSocket handshake with {self.server.base} failed ({exc}); is the URL the Rancher server URL, "
                "and does every proxy in between forward WebSocket upgrades?"
            )
        if isinstance(exc, (OSError, TimeoutError)):
            ssl_exc = find_ssl_error(exc)
            if ssl_exc is not None:
                return tls_error(self.server.url.host, ssl_exc)
            return Retry(f"{type(exc).__name__}: {exc}")
        return exc

    async def refused(self, refusal: Refusal) -> BaseException:
        """What an HTTP answer instead of 101 means: Rancher's own verdict when Rancher gave it (credential,
        permission, unknown type or cluster), else a diagnosis (`diagnose`). 5xx is worth a retry, the rest is
        final."""
        status, body = refusal.status, refusal.body
        what = f"subscribing to {self.scope} at {self.server.base}"
        secrets = self._secrets()
        if status >= 500:  # retried: no REST round trip for each attempt
            return diagnose(refusal, Facts(), what=what, scope=self.scope, base=self.server.base, secrets=secrets)
        if 200 <= status < 400:
            facts = await self.facts()
            return diagnose(refusal, facts, what=what, scope=self.scope, base=self.server.base, secrets=secrets)
        if self.scope.cluster and (status == 404 or (status == 401 and self.dialect == "steve" and not body.strip())):
            # Steve's cluster proxy answers 401 with an empty body for a cluster the user cannot get (or that
            # does not exist); REST tells which.
            error = await self.cluster_error(status)
            if error is not None:
                return error
        if status == 404 and self.dialect == "norman" and "no resources types matched" in body:
            valid = await self.valid_types()
            return UnknownTypeError(
                f"the {self.scope} scope has no type {', '.join(self.types) or '(empty)'}: Norman matches "
                f"resourceTypes= exactly (camelCase singular schema ids). Types it offers: {type_list(valid)}",
                types=self.types,
                valid=valid,
            )
        if status in (401, 403) and not refusal.html:
            return status_error(status, _scrub(body, secrets), what=what, scope=self.scope)
        facts = await self.facts()
        if status == 404 and self.dialect == "steve" and facts.version and _older_than(facts.version, (2, 5)):
            return NotFoundError(
                f"{what}: HTTP 404 for {self.scope.subscribe_path}: this server runs Rancher {facts.version}, and "
                "Steve (/v1) needs Rancher 2.5 or newer; use a Norman scope (global, cluster:ID, project:ID)"
            )
        if status in (401, 403):  # a web page, not Rancher's JSON: a proxy's own login or refusal
            kind = AuthenticationError if status == 401 else PermissionDeniedError
            by = f" from {refusal.hop}" if refusal.hop else ""
            return kind(
                f"{what}: HTTP {status}{by} with a web page, not Rancher's JSON: an authenticating proxy in front of "
                f"Rancher refused the request before Rancher saw the credential. {facts.said()}. Connect by a route "
                "the proxy does not guard, or give the proxy the credential it expects"
            )
        if status == 404 and refusal.rancher:
            message = _clip(_message(_scrub(body, secrets)), 200)
            return NotFoundError(
                f"{what}: Rancher answered HTTP 404 for {self.scope.subscribe_path} ({message or 'not found'}). "
                "Check the scope: the cluster or project id, and the type names"
            )
        return diagnose(refusal, facts, what=what, scope=self.scope, base=self.server.base, secrets=secrets)

    async def facts(self) -> Facts:
        """Ask REST whether Rancher answers at this URL and which version it is (never raises)."""
        try:
            version = await self.rest.server_version()
        except (AuthenticationError, PermissionDeniedError):
            return Facts(rest_answered=True)  # Rancher's auth answered: the API is there
        except RancherlabError:
            return Facts()
        return Facts(rest_answered=version is not None, version=version)

    def _secrets(self) -> tuple[str, ...]:
        return tuple(self.server.credentials.secrets()) if self.server.credentials else ()

    async def cluster_error(self, status: int) -> RancherlabError | None:
        """Ask REST whether the scope's cluster exists and may be read; None when REST cannot tell."""
        assert self.scope.cluster is not None
        try:
            await self.rest.cluster(self.scope.cluster)
        except (ClusterNotFound, RancherlabError) as exc:
            if isinstance(exc, ServerUnavailableError):
                return None
            return exc
        if status == 401:
            return PermissionDeniedError(
                f"Rancher answered 401 with an empty body for /k8s/clusters/{self.scope.cluster}: the credential is "
                f"valid but may not access cluster {self.scope.cluster} (it needs 'get' on that cluster)"
            )
        return None

    async def valid_types(self) -> list[str]:
        """The types the scope offers, for an error message (empty when REST cannot tell)."""
        try:
            return await self.rest.types(self.scope)
        except RancherlabError:
            return []


def _redirect_behind(exc: BaseException) -> InvalidStatus | None:
    """The 3xx answer behind an error websockets raised while following (or refusing to follow) a redirect."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        if isinstance(cur, InvalidStatus) and 300 <= cur.response.status_code < 400:
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def _older_than(version: str, floor: tuple[int, int]) -> bool:
    parts = version.lstrip("vV").split(".")
    try:
        return (int(parts[0]), int(parts[1])) < floor
    except (ValueError, IndexError):
        return False


CONNECT_ERRORS = (InvalidHandshake, InvalidURI, InvalidProxy, OSError, TimeoutError)
"""What `websockets.connect` raises for a connection attempt that failed (`Handshake.error` translates each)."""
