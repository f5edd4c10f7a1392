"""Typed errors of rancherlab's I/O layers. Each message says what went wrong and what to do next.

Every error is a `RancherlabError` (its root and `UsageError` live in the protocol core, the lowest layer,
and are re-exported here). The exit code the command line returns for each is decided in one place,
`rancherlab.cli.exit_code`; the `EXIT_*` constants name the codes. Messages are built from facts rancherlab
chose to show (URLs, type names, status codes), never from request headers, so a credential cannot leak
through `str(error)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .protocol.errors import RancherlabError, UsageError

EXIT_OK: Final = 0
EXIT_OTHER: Final = 1
EXIT_USAGE: Final = 2
EXIT_AUTH: Final = 3
EXIT_NOT_FOUND: Final = 4
EXIT_TLS: Final = 5
EXIT_GAVE_UP: Final = 6
EXIT_CLIENT_FAILED: Final = 7  # `check-client`: the client failed a check

TOKEN_HELP: Final = (
    "A Rancher API token looks like 'token-xxxxx:<secret>' (access key, colon, secret key). Create one in the "
    "Rancher UI under your avatar → Account & API Keys → Create API Key, with no cluster scope, and pass it with "
    "--token-file, RANCHER_TOKEN_KEY or ~/.rancher/cli2.json."
)


class ScopeError(UsageError):
    """A scope or server URL rancherlab cannot turn into a subscribe endpoint."""


class DashboardURLError(ScopeError):
    """A browser dashboard URL was given where the server URL belongs."""


class CredentialsError(UsageError):
    """No usable credential, or credentials given in a way that cannot be trusted."""


class AuthenticationError(RancherlabError):
    """HTTP 401: the server did not accept the credential (missing, wrong, expired or cluster-scoped)."""


class PermissionDeniedError(RancherlabError):
    """HTTP 403 or a Steve permission error: the credential is valid but may not do this."""


class NotFoundError(RancherlabError):
    """HTTP 404 or an unknown name: the endpoint, type or cluster does not exist on this server."""


class UnknownTypeError(NotFoundError):
    """A resource type the scope does not offer. `valid` lists the names it does offer."""

    def __init__(self, message: str, *, types: Sequence[str] = (), valid: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.types = tuple(types)
        self.valid = tuple(valid)


class ClusterNotFound(NotFoundError):
    """The cluster of a `cluster:`/`project:`/`steve:` scope does not exist on this server."""

    def __init__(self, message: str, *, cluster: str) -> None:
        super().__init__(message)
        self.cluster = cluster


class TLSError(RancherlabError):
    """A certificate problem: the server's could not be verified (self-signed CA, wrong host name, expired),
    or one given to serve TLS could not be loaded."""


class UpgradeRefusedError(RancherlabError):
    """Something answered the WebSocket upgrade with a normal HTTP response (often a proxy: 200, not 101)."""


class ServerUnavailableError(RancherlabError):
    """The server could not be reached or answered 5xx; worth retrying later (the stream does so itself)."""


class ConnectGaveUpError(RancherlabError):
    """Connecting kept failing with retryable errors until the configured limit."""


def type_list(valid: Sequence[str], limit: int = 60) -> str:
    """A readable, bounded list of type names for error messages."""
    names = sorted(set(valid))
    if not names:
        return "(the server listed no types)"
    more = f", … and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


__all__ = [
    "EXIT_AUTH",
    "EXIT_GAVE_UP",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_OTHER",
    "EXIT_TLS",
    "EXIT_USAGE",
    "TOKEN_HELP",
    "AuthenticationError",
    "ClusterNotFound",
    "ConnectGaveUpError",
    "CredentialsError",
    "DashboardURLError",
    "NotFoundError",
    "PermissionDeniedError",
    "RancherlabError",
    "ScopeError",
    "ServerUnavailableError",
    "TLSError",
    "UnknownTypeError",
    "UpgradeRefusedError",
    "UsageError",
    "type_list",
]
