"""What the Explorer knows about the events that arrived: counts, rate, connection history, the last
events, the versions of each object and a running field catalog. Fed one event at a time from any event
source (a live capture today), read by the panel at its own pace.

`add()` runs on the thread that receives (rancherlab's loop), so it only counts and appends; the field
catalog is folded from a pending list later (on demand, or off the loop when the list grows).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ..protocol.event import CONNECTED, DISCONNECTED, WATCH_STOPPED, Event

# Events kept for the "last events" list, versions kept per object, connection segments on the timeline.
DEFAULT_ROWS: Final = 200
DEFAULT_VERSIONS: Final = 50
MAX_SEGMENTS: Final = 60
RATE_WINDOW: Final = 5  # seconds averaged for events/s
FOLD_AT: Final = 2_000  # pending objects that trigger a fold of the field catalog off the receiving thread
# The background fold works in slices with a pause between them, so a notebook cell still gets the GIL quickly.
FOLD_SLICE: Final = 250
FOLD_PAUSE: Final = 2.0  # x the slice's own time: the background fold takes at most a third of a core

ObjectKey = tuple[str, str, str]  # (dialect, type, id)


@dataclass
class Segment:
    """One connection: when it opened, when it closed (None while open), how it closed."""

    conn: int
    opened: datetime
    closed: datetime | None = None
    code: int | None = None
    reason: str = ""
    frames: int = 0


@dataclass
class Link:
    """The connection as the panel shows it."""

    connected: bool = False
    since: datetime | None = None  # connected since, or down since
    down_mono: float | None = None  # time.monotonic() of the last close
    last_code: int | None = None
    last_reason: str = ""
    connections: int = 0
    disconnects: int = 0
    empty_closes: int = 0  # consecutive closes without a frame (the stream's back-off grows with these)
    segments: list[Segment] = field(default_factory=list)


class Tally:
    """Thread-safe aggregation of an event sequence; `add` is the sink, everything else reads."""

    def __init__(self, *, rows: int = DEFAULT_ROWS, versions: int = DEFAULT_VERSIONS) -> None:
        self._lock = threading.Lock()
        self.rows = rows
        self.versions_kept = versions
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.updates = 0  # bumped on every add: the panel redraws only when it moved
            self.counts: Counter[tuple[str, str, str]] = Counter()  # (kind, name, type) -> events
            self.latest: deque[Event] = deque(maxlen=self.rows)
            self.link = Link()
            self.watch_errors: list[str] = []
            self._seconds: deque[list[float]] = deque()  # [whole second, count]
            self._first_second = 0.0
            self._versions: dict[ObjectKey, deque[Event]] = {}
            self._pending: list[Event] = []
        self.catalog = FieldCatalog()
        self._folding = threading.Lock()

    # --- the sink ------------------------------------------------------------------------------------
    def add(self, event: Event) -> None:
        """Count one event (called on the receiving thread: constant work, no I/O)."""
        now = time.monotonic()
        second = float(int(now))
        with self._lock:
            self.total += 1
            self.updates += 1
            self.counts[(event.kind, event.name, event.type or "")] += 1
            if not event.is_ping:
                self.latest.append(event)
            secs = self._seconds
            if self.total == 1:
                self._first_second = second
            if secs and secs[-1][0] == second:
                secs[-1][1] += 1
            else:
                secs.append([second, 1])
                while secs and secs[0][0] < second - RATE_WINDOW - 1:
                    secs.popleft()
            if event.is_resource and event.type and event.id and isinstance(event.data, dict):
                key = (event.dialect, event.type, event.id)
                kept = self._versions.get(key)
                if kept is None:
                    kept = self._versions[key] = deque(maxlen=self.versions_kept)
                kept.append(event)
                self._pending.append(event)
            elif event.kind == "marker":
                self._marker(event, now)
            fold = len(self._pending) >= FOLD_AT
        if fold and not self._folding.locked():
            threading.Thread(
                target=self.fold, kwargs={"pause": FOLD_PAUSE}, name="rancherlab-explorer-fold", daemon=True
            ).start()

    def _marker(self, event: Event, now: float) -> None:
        link = self.link
        ts = event.ts or datetime.now(UTC)
        if event.name == CONNECTED:
            link.connected, link.since, link.down_mono = True, ts, None
            link.connections += 1
            link.segments.append(Segment(event.conn, ts))
            del link.segments[:-MAX_SEGMENTS]
        elif event.name == DISCONNECTED:
            info = event.info
            link.connected, link.since, link.down_mono = False, ts, now
            link.disconnects += 1
            code = info.get("code")
            link.last_code = code if isinstance(code, int) else None
            link.last_reason = str(info.get("reason") or "")
            frames = int(info.get("frames") or 0)
            link.empty_closes = 0 if frames else link.empty_closes + 1
            if link.segments and link.segments[-1].closed is None:
                seg = link.segments[-1]
                seg.closed, seg.code, seg.reason, seg.frames = ts, link.last_code, link.last_reason, frames
        elif event.name == WATCH_STOPPED:
            what = (event.watch or {}).get("resourceType") or event.type or "a watch"
            self.watch_errors.append(f"{what}: {event.info.get('error') or 'stopped by the server'}")

    # --- reads ---------------------------------------------------------------------------------------
    def rate(self) -> float:
        """Events per second over the last `RATE_WINDOW` whole seconds."""
        now = float(int(time.monotonic()))
        with self._lock:
            if not self._seconds:
                return 0.0
            # a capture younger than the window is averaged over the whole seconds it has had
            window = max(1.0, min(float(RATE_WINDOW), now - self._first_second))
            n = sum(c for s, c in self._seconds if now - window <= s < now)
        return n / window

    def snapshot(self) -> tuple[int, list[tuple[tuple[str, str, str], int]], list[Event]]:
        """(total, sorted counts, last events oldest first) taken under the lock."""
        with self._lock:
            return self.total, sorted(self.counts.items()), list(self.latest)

    def find(self, seq: int) -> Event | None:
        with self._lock:
            for event in reversed(self.latest):
                if event.seq == seq:
                    return event
        return None

    def objects(self) -> list[ObjectKey]:
        with self._lock:
            return sorted(self._versions)

    def versions(self, key: ObjectKey) -> list[Event]:
        with self._lock:
            return list(self._versions.get(key, ()))

    def fold(self, pause: float = 0.0) -> FieldCatalog:
        """Fold every object that arrived since the last fold into the field catalog; returns it.

        `pause` sleeps between slices of `FOLD_SLICE` objects, that many times as long as the slice took (the
        background fold uses it; about 50 us per pod-sized object, so it still keeps up with ~7,000 objects/s).
        """
        with self._folding:
            with self._lock:
                pending, self._pending = self._pending, []
            for i in range(0, len(pending), FOLD_SLICE):
                began = time.perf_counter()
                self.catalog.add_many(pending[i : i + FOLD_SLICE])
                if pause:
                    time.sleep(pause * (time.perf_counter() - began))
        return self.catalog


class FieldCatalog:
    """`rl.schema`'s per-type field catalog, kept up to date one object at a time (same walk, same columns)."""

    def __init__(self) -> None:
        from ..analysis._schema import _Field

        self._types: dict[tuple[str, str], tuple[dict[tuple[str, ...], _Field], list[int], set[tuple[str, ...]]]] = {}
        self._lock = threading.Lock()

    def add_many(self, events: list[Event]) -> None:
        from ..analysis._schema import _walk

        with self._lock:
            for event in events:
                obj = event.data
                if not isinstance(obj, dict) or event.type is None:
                    continue
                group = self._types.get((event.dialect, event.type))
                if group is None:
                    group = self._types[(event.dialect, event.type)] = ({}, [0], set())
                seen, count, first = group
                count[0] += 1
                here: set[tuple[str, ...]] = set()
                for k, v in obj.items():
                    _walk(v, (str(k),), seen, here, event.seq)
                if count[0] == 1:
                    first.update(here)

    def types(self) -> list[tuple[str, str, int]]:
        """(dialect, type, objects) for every type seen."""
        with self._lock:
            return sorted((d, t, c[0]) for (d, t), (_, c, _f) in self._types.items())

    def rows(self, dialect: str, type_name: str) -> list[dict[str, Any]]:
        """One dict per field path of a type: path, types, presence (%), nulls (%), examples, conflict, late."""
        from ..analysis._flatten import is_conflict
        from ..analysis._schema import path_of

        with self._lock:
            group = self._types.get((dialect, type_name))
            if group is None:
                return []
            seen, count, first = group
            out = []
            for parts, f in seen.items():
                occurrences = sum(f.types.values()) or 1
                out.append(
                    {
                        "path": path_of(parts),
                        "types": dict(sorted(f.types.items())),
                        "presence": 100.0 * f.objects / count[0],
                        "nulls": 100.0 * f.nulls / occurrences,
                        "examples": list(f.examples),
                        "conflict": is_conflict(f.types.keys()),
                        "late": parts not in first,
                    }
                )
        return sorted(out, key=lambda r: r["path"])


__all__ = ["FieldCatalog", "Link", "ObjectKey", "Segment", "Tally"]
