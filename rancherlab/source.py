"""The event-source seam: what `Capture` (and so the Explorer) needs from whatever produces `Event`s.

A live `Stream` and a replayed recording (`replay.ReplaySource`) both satisfy `EventSource`, so the same
consumer code counts, keeps, records and plots either; a sink cannot tell them apart. The interface is
small on purpose: a way to start, batches of events, a way to stop, and the facts a recording header
needs (dialect, scope, server, endpoint, redaction policy, server version, frame limit).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .protocol.event import Dialect, Event
from .redaction import Redactor


@runtime_checkable
class EventSource(Protocol):
    """Anything that produces a stream of redacted `Event`s for `Capture`.

    Events come out already redacted (by `redactor`'s policy) and stamped (`seq`, `conn`, `t`, `ts`).
    `next_batch` raises `StopAsyncIteration` once the source has ended (and again on every later call),
    or the source's final error (a `RancherlabError` subclass) if it failed.
    """

    @property
    def dialect(self) -> Dialect:
        """'norman' (/v3) or 'steve' (/v1)."""
        ...

    @property
    def scope(self) -> object:
        """The scope; `str(scope)` is its canonical form (e.g. ``project:c-abc12:p-xyz34``, ``steve``)."""
        ...

    @property
    def server_base(self) -> str:
        """The Rancher server as ``scheme://host[:port]``, never with a credential."""
        ...

    @property
    def endpoint(self) -> str:
        """The subscribe URL (or its path and query) the events came from."""
        ...

    @property
    def redactor(self) -> Redactor:
        """The redaction policy the events went through (a recording header records `redactor.policy`)."""
        ...

    @property
    def server_version(self) -> str | None:
        """Rancher's version when known (after `identify()`), else None."""
        ...

    @property
    def max_frame_bytes(self) -> int:
        """The largest frame the source accepts, in bytes."""
        ...

    async def identify(self) -> str | None:
        """Find out `server_version` (a live stream asks REST; a recording knows it); never raises."""
        ...

    def start(self) -> None:
        """Start producing on the running loop; calling it again does nothing."""
        ...

    async def next_batch(self, limit: int = 1000) -> list[Event]:
        """Wait for at least one event, then return up to `limit` without waiting more."""
        ...

    async def aclose(self) -> None:
        """Stop at once; a pending or later `next_batch` raises `StopAsyncIteration`."""
        ...


__all__ = ["EventSource"]
