"""The one Event model every source (live, replay, simulator feed) produces and every sink consumes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal, cast, final

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


# `Event(data=FROM_RAW)`: the frame's data is read from its raw text when first asked for (see `Event`).
class _FromRaw:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FROM_RAW"


FROM_RAW: Final[Any] = _FromRaw()

# Names of server messages that carry a resource object.
RESOURCE_EVENTS: Final = frozenset({"resource.create", "resource.change", "resource.remove"})


# The fields of an `Event`, in constructor order.
FIELDS: Final = (
    "seq", "conn", "t", "ts", "dialect", "kind", "name", "type", "id", "revision", "raw", "data", "watch", "info",
)  # fmt: skip


@final
class Event:
    """One thing that happened on a subscribe stream.

    `seq`, `conn`, `t` and `ts` are stamped by whoever owns the stream (the live client, the replay
    reader); the protocol parser fills the rest from the frame text alone.

    Events are values: nothing changes one after it is built (type checkers reject assignments; the fields are
    `Final`). Two events are equal when every field is. `data` may be passed as `FROM_RAW` for a frame whose
    other fields were already read from `raw` (a recording stores them): it is then parsed from `raw` on first
    access, by the protocol's frame rule, and kept. Reading it raises `ProtocolError` if `raw` turns out not to be
    the frame the other fields say (a recording edited by hand).
    """

    __slots__ = ("_data", "conn", "dialect", "id", "info", "kind", "name", "raw", "revision", "seq", "t", "ts", "type", "watch")  # fmt: skip

    def __init__(
        self,
        seq: int,
        conn: int,
        t: float,
        ts: datetime | None,
        dialect: Dialect,
        kind: Kind,
        name: str,
        type: str | None = None,
        id: str | None = None,
        revision: str | None = None,
        raw: str | None = None,
        data: Any = None,
        # Steve echoes the subscription key fields on its messages (resourceType, namespace, id, ...).
        watch: Mapping[str, Any] | None = None,
        # Marker fields (close code, reason, seconds connected, error text ...).
        info: Mapping[str, Any] | None = None,
    ) -> None:
        # Plain slot stores: this runs for every event received or replayed, and a frozen dataclass's
        # object.__setattr__ per field made construction cost more than parsing a small frame.
        self.seq: Final = seq
        self.conn: Final = conn
        self.t: Final = t
        self.ts: Final = ts
        self.dialect: Final = dialect
        self.kind: Final = kind
        self.name: Final = name
        self.type: Final = type
        self.id: Final = id
        self.revision: Final = revision
        self.raw: Final = raw
        self._data = data
        self.watch: Final = watch
        self.info: Final[Mapping[str, Any]] = {} if info is None else info

    @property
    def data(self) -> Any:
        """The frame's `data` (the resource object of resource events), a snapshot's object, a message's body."""
        data = self._data
        if data is FROM_RAW:
            from .frames import recorded_data  # the frame rule lives above this module

            data = self._data = recorded_data(self)
        return data

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
        return Event(
            seq, conn, t, ts, self.dialect, self.kind, self.name, self.type, self.id, self.revision, self.raw,
            self._data, self.watch, self.info,
        )  # fmt: skip

    def replace(self, **changes: Any) -> Event:
        """A copy with the given fields (by their constructor names) changed, like `dataclasses.replace`.

        Raises `TypeError` for a name that is not a field.
        """
        fields = dict(zip(FIELDS, self._fields(lazy=True)))
        unknown = changes.keys() - fields.keys()
        if unknown:
            raise TypeError(f"Event has no field {min(unknown)!r}; its fields are {', '.join(FIELDS)}")
        fields.update(changes)
        return Event(**fields)

    def _fields(self, *, lazy: bool = False) -> tuple[Any, ...]:
        return (
            self.seq, self.conn, self.t, self.ts, self.dialect, self.kind, self.name, self.type, self.id,
            self.revision, self.raw, self._data if lazy else self.data, self.watch, self.info,
        )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Event:
            return NotImplemented
        o = cast(Event, other)
        lazy = self._data is FROM_RAW and o._data is FROM_RAW  # data is a function of raw: no need to parse it
        return self._fields(lazy=lazy) == o._fields(lazy=lazy)

    __hash__ = None  # type: ignore[assignment]  # data and info are dicts: an event is a value, not a key

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
