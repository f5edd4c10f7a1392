"""The one Event model every source (live, replay, simulator feed) produces and every sink consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

Dialect = Literal["norman", "steve"]
Kind = Literal["frame", "sent", "snapshot", "resync", "marker"]

DIALECTS: Final = ("norman", "steve")
KINDS: Final = ("frame", "sent", "snapshot", "resync", "marker")

# Marker names: lifecycle facts are events too, so a stream can always tell silence from loss.
CONNECTED: Final = "connected"
DISCONNECTED: Final = "disconnected"
RESYNC_STARTED: Final = "resync.started"
RESYNC_FINISHED: Final = "resync.finished"
WATCH_STOPPED: Final = "watch.stopped"
ANOMALY: Final = "anomaly"
MARKERS: Final = (CONNECTED, DISCONNECTED, RESYNC_STARTED, RESYNC_FINISHED, WATCH_STOPPED, ANOMALY)

# The largest frame (and recording line) rancherlab accepts; Rancher cluster and node objects can pass 1 MiB.
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024 * 1024

# Names of server messages that carry a resource object.
RESOURCE_EVENTS: Final = frozenset({"resource.create", "resource.change", "resource.remove"})


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened on a subscribe stream.

    `seq`, `conn`, `t` and `ts` are stamped by whoever owns the stream (the live client, the replay
    reader); the protocol parser fills the rest from the frame text alone.
    """

    seq: int
    conn: int
    t: float
    ts: datetime | None
    dialect: Dialect
    kind: Kind
    name: str
    type: str | None = None
    id: str | None = None
    revision: str | None = None
    raw: str | None = None
    data: Any = None
    # Steve echoes the subscription key fields on its messages (resourceType, namespace, id, ...).
    watch: Mapping[str, Any] | None = None
    # Marker fields (close code, reason, seconds connected, error text ...).
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_resource(self) -> bool:
        """True for events that carry a resource object (frames and REST snapshot/resync objects)."""
        if self.kind in ("snapshot", "resync"):
            return True
        return self.kind == "frame" and self.name in RESOURCE_EVENTS

    @property
    def is_ping(self) -> bool:
        return self.kind == "frame" and self.name == "ping"

    def stamped(self, *, seq: int, conn: int, t: float, ts: datetime | None) -> Event:
        """A copy with stream position filled in: the parser does not know where it sits."""
        # The constructor directly, not dataclasses.replace: this runs for every event received or replayed.
        return Event(
            seq, conn, t, ts, self.dialect, self.kind, self.name, self.type, self.id, self.revision, self.raw,
            self.data, self.watch, self.info,
        )  # fmt: skip

    def __repr__(self) -> str:
        where = f"{self.type}/{self.id}" if self.id else (self.type or "")
        rev = f" rev={self.revision}" if self.revision else ""
        return f"<Event #{self.seq} c{self.conn} {self.dialect} {self.kind} {self.name} {where}{rev}>".replace(
            "  ", " "
        )


def marker(
    name: str,
    dialect: Dialect,
    *,
    seq: int = 0,
    conn: int = 0,
    t: float = 0.0,
    ts: datetime | None = None,
    raw: str | None = None,
    watch: Mapping[str, Any] | None = None,
    **info: Any,
) -> Event:
    """Build a lifecycle marker event."""
    return Event(
        seq=seq, conn=conn, t=t, ts=ts, dialect=dialect, kind="marker", name=name, raw=raw, watch=watch, info=info
    )
