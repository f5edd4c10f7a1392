"""What the Explorer knows about the events that arrived: counts, rate, connection history, the last
events, the versions of each object and a running field catalog. Fed one event at a time from any event
source (a live capture or a replayed recording), read by the panel at its own pace.

`add()` runs on the thread that receives (rancherlab's loop), so it only counts and appends; the field
catalog and the versions of each object are folded from a pending list later (on demand, or off the loop when
the list grows). Versions are kept as their recording lines (`recording.encode_event`), bytes the garbage
collector never walks: tens of thousands of kept events as objects made its full collections stall every
thread, the notebook's included, for 100 ms and more at 5,000 events/s.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

from ..protocol.event import CONNECTED, DISCONNECTED, WATCH_STOPPED, Dialect, Event

# Events kept for the "last events" list, versions kept per object, connection segments on the timeline.
DEFAULT_ROWS: Final = 200
DEFAULT_VERSIONS: Final = 50
MAX_SEGMENTS: Final = 60
RATE_WINDOW: Final = 5  # seconds averaged for events/s
FOLD_AT: Final = 2_000  # pending objects that trigger a fold of the field catalog off the receiving thread
# The background fold works in slices with a pause between them, so a notebook cell still gets the GIL quickly:
# a slice holds it well under a millisecond (the interpreter's switch interval is 5 ms).
FOLD_SLICE: Final = 100
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
            self._versions: dict[ObjectKey, deque[bytes | Event]] = {}  # recording lines (an Event if not encodable)
            self._pending: list[Event] = []
            self._generation = getattr(self, "_generation", 0) + 1  # a fold of events from before a reset drops them
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
        """Every object seen, as (dialect, type, id), sorted (folds what is pending first)."""
        self.fold()
        with self._lock:
            return sorted(self._versions)

    def versions(self, key: ObjectKey) -> list[Event]:
        """The last `versions_kept` events of one object, oldest first (folds what is pending first)."""
        from ..protocol._json import loads
        from ..recording import decode_event

        self.fold()
        with self._lock:
            kept = list(self._versions.get(key, ()))
        return [v if isinstance(v, Event) else decode_event(loads(v), cast(Dialect, key[0])) for v in kept]

    def fold(self, pause: float = 0.0) -> FieldCatalog:
        """Fold every object that arrived since the last fold into the field catalog; returns it.

        `pause` sleeps between slices of `FOLD_SLICE` objects, that many times as long as the slice took (the
        background fold uses it; about 7 us per pod-sized object, so it still keeps up with ~40,000 objects/s).
        """
        from ..recording import encode_event

        with self._folding:
            with self._lock:
                pending, self._pending = self._pending, []
                generation, catalog = self._generation, self.catalog
            for i in range(0, len(pending), FOLD_SLICE):
                began = time.perf_counter()
                chunk = pending[i : i + FOLD_SLICE]
                catalog.add_many(chunk)
                lines: list[tuple[ObjectKey, bytes | Event]] = []
                for event in chunk:
                    try:
                        line: bytes | Event = encode_event(event)
                    except (ValueError, TypeError):  # not recordable as it is: kept as the event itself
                        line = event
                    lines.append(((event.dialect, str(event.type), str(event.id)), line))
                with self._lock:
                    if self._generation != generation:
                        break  # reset meanwhile: these events belong to the panel's previous source
                    for key, line in lines:
                        kept = self._versions.get(key)
                        if kept is None:
                            kept = self._versions[key] = deque(maxlen=self.versions_kept)
                        kept.append(line)
                if pause:
                    time.sleep(pause * (time.perf_counter() - began))
        return catalog


_JSON_TYPES: Final[dict[type, str]] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    dict: "object",
    list: "array",
    tuple: "array",
}
_RAWS: Final = 8  # distinct raw values remembered per path while its examples fill up (saves their JSON text)


class _Node:
    """One field path of one type: its JSON types, how many objects had it, nulls, examples; its children."""

    __slots__ = ("children", "examples", "first", "nulls", "objects", "raws", "stamp", "types")

    def __init__(self, first: int) -> None:
        self.children: dict[str, _Node] = {}
        self.types: dict[str, int] = {}
        self.objects = 0
        self.nulls = 0
        self.examples: list[str] = []
        self.raws: list[Any] = []
        self.stamp = 0  # the last object (numbered per type) that had this path: presence counts it once
        self.first = first  # the object (numbered per type) where the path first showed; 1 = not late


def _walker() -> Callable[[_Node, str, Any, int], None]:
    """`rl.schema`'s walk (`analysis._schema._walk`) over a tree of nodes instead of a dict of path tuples: no
    tuple is built or hashed per field, presence is a stamp, not a set, and a repeated value is not re-encoded.
    (Made on first use: the analysis layer, and pandas with it, loads only when an Explorer does.)"""
    from ..analysis._flatten import json_type
    from ..analysis._schema import ITEMS, MAX_EXAMPLES, example

    def visit(parent: _Node, key: str, value: Any, n: int) -> None:
        node = parent.children.get(key)
        if node is None:
            node = parent.children[key] = _Node(n)
        t = _JSON_TYPES.get(type(value)) or json_type(value)
        types = node.types
        types[t] = types.get(t, 0) + 1
        if node.stamp != n:
            node.stamp = n
            node.objects += 1
        if t == "object":
            for k, v in value.items():
                visit(node, k if type(k) is str else str(k), v, n)
        elif t == "array":
            for v in value:
                visit(node, ITEMS, v, n)
        elif t == "null":
            node.nulls += 1
        elif len(node.examples) < MAX_EXAMPLES:
            raws = node.raws
            for seen in raws:
                if seen == value and type(seen) is type(value):
                    return  # its example is already considered
            if len(raws) < _RAWS:
                raws.append(value)
            ex = example(value)
            if ex not in node.examples:
                node.examples.append(ex)

    return visit


class FieldCatalog:
    """`rl.schema`'s per-type field catalog, kept up to date one object at a time (same walk, same columns:
    presence, JSON types, nulls, examples, conflict, late), a few microseconds per field."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], _Node] = {}  # root per (dialect, type); root.objects counts objects
        self._lock = threading.Lock()
        self._visit = _walker()

    def add_many(self, events: list[Event]) -> None:
        visit = self._visit
        with self._lock:
            for event in events:
                obj = event.data
                if not isinstance(obj, dict) or event.type is None:
                    continue
                root = self._types.get((event.dialect, event.type))
                if root is None:
                    root = self._types[(event.dialect, event.type)] = _Node(0)
                root.objects += 1
                n = root.objects
                for k, v in obj.items():
                    visit(root, k if type(k) is str else str(k), v, n)

    def types(self) -> list[tuple[str, str, int]]:
        """(dialect, type, objects) for every type seen."""
        with self._lock:
            return sorted((d, t, root.objects) for (d, t), root in self._types.items())

    def rows(self, dialect: str, type_name: str) -> list[dict[str, Any]]:
        """One dict per field path of a type: path, types, presence (%), nulls (%), examples, conflict, late."""
        from ..analysis._flatten import is_conflict
        from ..analysis._schema import path_of

        out: list[dict[str, Any]] = []
        with self._lock:
            root = self._types.get((dialect, type_name))
            if root is None:
                return []
            todo: list[tuple[tuple[str, ...], _Node]] = [((k,), node) for k, node in root.children.items()]
            while todo:
                parts, f = todo.pop()
                occurrences = sum(f.types.values()) or 1
                out.append(
                    {
                        "path": path_of(parts),
                        "types": dict(sorted(f.types.items())),
                        "presence": 100.0 * f.objects / root.objects,
                        "nulls": 100.0 * f.nulls / occurrences,
                        "examples": list(f.examples),
                        "conflict": is_conflict(f.types.keys()),
                        "late": f.first > 1,
                    }
                )
                todo.extend(((*parts, k), child) for k, child in f.children.items())
        return sorted(out, key=lambda r: r["path"])


__all__ = ["FieldCatalog", "Link", "ObjectKey", "Segment", "Tally"]
