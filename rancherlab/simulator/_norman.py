"""Norman `/v3/*subscribe` sessions and the shared watches behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from .._wsserver import Outbox
from ..protocol import norman
from .formats import NormanScopeKind, norman_views
from .world import Change, World


@dataclass(eq=False)
class NormanSession:
    """One upgraded `/v3` socket: which schemas it streams, from which scope."""

    outbox: Outbox
    world: World
    scope_kind: NormanScopeKind
    scope_id: str | None
    schemas: frozenset[str]
    base_url: str
    on_slow: Callable[[NormanSession], None]

    def frames(self, change: Change) -> list[str]:
        action = change.action
        out = []
        for schema, obj in norman_views(self.world, change.resource, self.scope_kind, self.scope_id, self.base_url):
            if schema in self.schemas:
                out.append(norman.remove_frame(obj) if action == "DELETED" else norman.change_frame(obj))
        return out

    def deliver(self, change: Change) -> None:
        for text in self.frames(change):
            if not self.outbox.offer(text):
                self.on_slow(self)  # norman's broadcaster: "Slow consumer, drop"
                return

    def replay(self, schemas: set[str]) -> None:
        """The synthetic ADDED events a fresh Kubernetes watch (ResourceVersion "0") starts with."""
        for res in self.world.resources():
            for schema, obj in norman_views(self.world, res, self.scope_kind, self.scope_id, self.base_url):
                if schema in schemas and schema in self.schemas:
                    self.outbox.push(norman.change_frame(obj))


@dataclass(eq=False)
class SharedWatch:
    key: tuple[str, str]
    subscribers: set[NormanSession] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class SharedWatches:
    """One watch per (schema, cluster) for the whole server, like norman's proxy store broadcaster.

    Only the socket that starts a watch gets its initial replay; when a watch ends (the watch timeout)
    every socket that streamed that schema is closed; when its last socket leaves it stops.
    """

    def __init__(self, timeout: float | None, on_end: Callable[[NormanSession], None]) -> None:
        self.timeout = timeout
        self._on_end = on_end
        self._active: dict[tuple[str, str], SharedWatch] = {}

    def join(self, session: NormanSession, cluster: str) -> set[str]:
        """Attach the session to each of its schemas' watches; return the schemas it started."""
        started = set()
        for schema in session.schemas:
            key = (schema, cluster)
            watch = self._active.get(key)
            if watch is None:
                watch = self._active[key] = SharedWatch(key)
                if self.timeout:
                    watch.timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, key)
                started.add(schema)
            watch.subscribers.add(session)
        return started

    def leave(self, session: NormanSession) -> None:
        """Detach; a watch nobody listens to any more is stopped, so the next socket starts it afresh."""
        for key, watch in list(self._active.items()):
            watch.subscribers.discard(session)
            if not watch.subscribers:
                if watch.timer:
                    watch.timer.cancel()
                del self._active[key]

    def _expire(self, key: tuple[str, str]) -> None:
        watch = self._active.pop(key, None)
        if watch is None:
            return
        for session in list(watch.subscribers):
            self._on_end(session)

    def clear(self) -> None:
        for watch in self._active.values():
            if watch.timer:
                watch.timer.cancel()
        self._active.clear()
