"""An embedded stand-in for Rancher: the same URLs, auth, bytes, pings and ways of closing.

`Simulator` runs the server on its own event loop in a daemon thread, so it works the same from a
script, a test or a notebook. `SimulatorServer` is the async core for code already inside a loop.
"""

from __future__ import annotations

import copy
import re
import secrets
import ssl
import string
from typing import Any

from .._loop import ServerHandle
from .profiles import LATEST, PROFILES, RancherProfile, profile_for
from .server import SimulatorConfig, SimulatorServer
from .world import Change, Resource, World

__all__ = [
    "PROFILES",
    "Change",
    "RancherProfile",
    "Resource",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "World",
    "generate_token",
    "profile_for",
]

_ALNUM = string.ascii_lowercase + string.digits
_RELEASE = re.compile(r"^v?(\d+\.\d+\.\d+(?:-[\w.]+)?)$")  # a release named in full, reported as given


def generate_token() -> str:
    """A credential in Rancher's API-key form, `token-xxxxx:<secret>`."""
    access = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    secret = "".join(secrets.choice(_ALNUM) for _ in range(54))
    return f"token-{access}:{secret}"


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


class Simulator(ServerHandle[SimulatorServer]):
    """A running simulator: `url`, `token`, the `world` (ground truth) and faults on demand.

    `rancher_version` (a release such as "v2.8.3", or a profile name of `PROFILES` such as "2.7-head") makes its
    Steve sessions send what that Rancher sent: see `profiles.BEHAVIOURS`. Without it: the latest (2.12). It also
    sets the default Steve store and the reported `server_version`, unless those are given. Raises `UsageError`
    for a version no profile covers.

    >>> with Simulator(seed=1) as sim:
    ...     sim.url  # doctest: +SKIP
    'http://127.0.0.1:40123'
    """

    what = "simulator"

    def __init__(
        self,
        seed: int = 0,
        *,
        token: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        server_version: str | None = None,
        rancher_version: str | None = None,
        **options: Any,
    ) -> None:
        self.profile = profile_for(rancher_version) if rancher_version else LATEST
        if server_version is None:
            full = rancher_version and _RELEASE.match(rancher_version.strip())
            server_version = f"v{full.group(1)}" if full else self.profile.version
        options.setdefault("steve_store", self.profile.steve_store)
        self.generated_token = token is None
        self._token = token or generate_token()
        ctx = tls_context(certfile, keyfile) if certfile and keyfile else None
        self.world = World(seed, server_version=server_version)
        self.config = SimulatorConfig(token=self._token, ssl_context=ctx, profile=self.profile, **options)
        super().__init__("rancherlab-simulator")  # after validation: a refused option leaves no loop behind

    def _make(self) -> SimulatorServer:
        return SimulatorServer(self.world, self.config)

    def __repr__(self) -> str:
        state = self.url if self._server else "stopped"
        return f"<Simulator {state} seed-world rev={self.world.revision}>"

    @property
    def token(self) -> str:
        return self._token

    @property
    def url(self) -> str:
        return self._running.url

    @property
    def port(self) -> int:
        return self._server.port if self._server else self.config.port

    # --- driving it from another thread --------------------------------------------------------
    def step(self, n: int = 1) -> list[Change]:
        """Apply `n` world changes now (with `rate=0` the world changes only through this)."""
        server = self._running
        return self._runner.run(lambda: server.step(n))

    def ground_truth(self) -> dict[tuple[str, str, str | None, str], dict[str, Any]]:
        """Every current object, keyed (kind, cluster, namespace, name), read consistently on the server's loop."""
        return self._runner.run(
            lambda: {(r.kind, r.cluster, r.namespace, r.name): copy.deepcopy(r.obj) for r in self.world.resources()}
        )

    def history(self) -> list[Change]:
        """The changes the world made, in order: every one, or the last `history_limit` (config) of them."""
        return self._runner.run(lambda: list(self.world.history))

    def drop_now(self) -> None:
        """Close every socket without a close frame (clients see 1006)."""
        self._runner.run(self._running.drop_now)

    def stall(self) -> None:
        """Every open socket goes silent with its TCP connection left open."""
        self._runner.run(self._running.stall)

    def restart(self, down: float = 1.0) -> None:
        """The port refuses connections for `down` seconds, then the same server comes back."""
        self._runner.call(self._running.restart(down), timeout=down + 30)
