"""What a failed subscribe handshake means: each way the upgrade can fail becomes a typed error that says what to
do, or `Retry` when another attempt may succeed.

The stream calls `Handshake.error(exc)` with whatever the websockets client raised while connecting. Facts that
only REST can tell (does the cluster exist, which types does the scope offer) are asked here, through the
stream's REST client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidProxy, InvalidStatus, InvalidURI

from .credentials import Server
from .errors import (
    ClusterNotFound,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    ScopeError,
    ServerUnavailableError,
    UnknownTypeError,
    UpgradeRefusedError,
    UsageError,
    type_list,
)
from .protocol.event import Dialect
from .rest import RestClient, find_ssl_error, status_error, tls_error
from .scope import Scope


class Retry(Exception):
    """A connection failure worth another attempt (network error, 5xx, a garbled handshake)."""


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
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            return await self.refused(exc.response.status_code, body)
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

    async def refused(self, status: int, body: str) -> BaseException:
        """What an HTTP answer instead of 101 means; 5xx is worth a retry, the rest is final."""
        what = f"subscribing to {self.scope} at {self.server.base}"
        if status >= 500:
            return Retry(f"HTTP {status}")
        if 200 <= status < 400:
            return UpgradeRefusedError(
                f"{what}: got HTTP {status} instead of 101 Switching Protocols. Something between you and Rancher (a "
                "proxy or load balancer) does not forward WebSocket upgrades, or the URL is not the Rancher server. "
                "Check the URL; a proxy must pass the Upgrade and Connection headers (nginx: proxy_set_header Upgrade "
                '$http_upgrade; proxy_set_header Connection "upgrade")'
            )
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
        if status == 404:
            return NotFoundError(
                f"{what}: HTTP 404 for {self.scope.subscribe_path}; is this a Rancher 2 server "
                "(Steve /v1 needs Rancher 2.5 or newer)?"
            )
        return status_error(status, body, what=what, scope=self.scope)

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


CONNECT_ERRORS = (InvalidHandshake, InvalidURI, InvalidProxy, OSError, TimeoutError)
"""What `websockets.connect` raises for a connection attempt that failed (`Handshake.error` translates each)."""
