"""Serve a recording to any websocket client, browsers included, as the Rancher it was recorded from.

`ReplayServer` runs on its own event loop in a daemon thread (like `Simulator`), so it works the same
from a script, a test or a notebook; `AsyncReplayServer` is the async core for code already in a loop.

>>> with ReplayServer("recordings/pods.jsonl", speed=10) as server:  # doctest: +SKIP
...     server.endpoint_url
'ws://127.0.0.1:40123/v1/subscribe'
"""

from __future__ import annotations

import os
from pathlib import Path

from .._loop import ServerHandle
from ..protocol import norman, steve
from ._script import Script
from .server import AsyncReplayServer, ReplayOptions

__all__ = ["AsyncReplayServer", "ReplayOptions", "ReplayServer"]


class ReplayServer(ServerHandle[AsyncReplayServer]):
    """A running replay server: `url` (page and REST), `endpoint_url` (the recorded subscribe endpoint)."""

    what = "replay server"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        speed: float = 1.0,
        loop: bool = False,
        token: str | None = None,
        reproduce_drops: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        norman_ping: float = norman.PING_INTERVAL,
        steve_ping: float = steve.PING_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.options = ReplayOptions(
            speed=speed,
            loop=loop,
            token=token,
            reproduce_drops=reproduce_drops,
            host=host,
            port=port,
            norman_ping=norman_ping,
            steve_ping=steve_ping,
        )
        super().__init__("rancherlab-replay-server")  # after validation: a refused option leaves no loop behind

    def __repr__(self) -> str:
        state = self.url if self._server else "stopped"
        return f"<ReplayServer {self.path.name} {state} speed={self.options.speed:g}{' loop' if self.options.loop else ''}>"

    @property
    def url(self) -> str:
        return self._running.url

    @property
    def endpoint_url(self) -> str:
        return self._running.endpoint_url

    @property
    def port(self) -> int:
        return self._server.port if self._server else self.options.port

    @property
    def script(self) -> Script:
        """The recording as served: endpoint path, frames, recorded watches, REST state."""
        return self._running.script

    def position(self) -> float:
        """The replay clock (recorded seconds) that the REST lists and resumed watches follow."""
        server = self._running
        return self._runner.run(server.position)

    def _make(self) -> AsyncReplayServer:
        return AsyncReplayServer(self.path, self.options)
