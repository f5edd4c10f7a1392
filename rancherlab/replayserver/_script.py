"""A recording prepared for serving: what each socket sends, when, and what REST lists at each moment.

Pure data built once from the file (no sockets, no clocks), so every connection and every REST call
reads the same immutable script. Times are seconds since the recording's first event (`t` made
monotonic, so a folder of several recordings plays as one).
"""

from __future__ import annotations

import logging
import os
import warnings
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from ..protocol import counts as count_rule
from ..protocol import steve
from ..protocol.event import ANOMALY, DISCONNECTED, RESOURCE_EVENTS, Dialect, Event
from ..protocol.objects import (
    Key,
    ObjectMirror,
    event_key,
    later_revision,
    object_namespace,
    removes,
    revision_after,
)
from ..protocol.steve import KEY_FIELDS, echo_key, guess_plural, same_type
from ..recording import RecordingHeader, RecordingWarning, read_recording

log = logging.getLogger("rancherlab.replayserver")

# Steve messages that belong to a watch's recorded stream (start/stop/error are the server's own).
STEVE_STREAM: Final = frozenset({*RESOURCE_EVENTS, steve.CHANGES_MODE})
# Rancher never sends a close frame, so a clean close code means the recording client closed: not a drop.
_CLIENT_CLOSES: Final = (1000, 1001)


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded server message, to be sent again byte for byte at `t`."""

    t: float
    raw: str
    name: str
    type: str | None = None
    id: str | None = None
    revision: str | None = None
    namespace: str | None = None
    base_type: str | None = None  # Norman: the schema a subtype streams under (a replicaset is a `workload`)


@dataclass
class RecordedWatch:
    """One Steve subscription as recorded: its key, the client's first message, and its stream."""

    key: str
    fields: dict[str, Any]
    message: str | None = None
    start: float | None = None
    started: bool = False
    schema: str | None = None
    frames: list[Frame] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StateChange:
    """An object appearing, changing or going away at `t`, for the REST lists."""

    t: float
    key: Key
    obj: dict[str, Any] | None  # None: removed
    revision: str | None


@dataclass
class Script:
    header: RecordingHeader
    path: str  # the endpoint's path, as served
    query: dict[str, list[str]]  # the endpoint's query as recorded
    end: float  # time of the last event
    norman: list[Frame]  # Norman frames in order, pings left out, drops as `disconnected`
    drops: list[float]  # times of recorded drops (`disconnected` markers)
    watches: dict[str, RecordedWatch]  # Steve, by full subscription key
    base: dict[Key, dict[str, Any]]  # objects the recording started from (snapshots)
    base_revision: str | None
    changes: list[StateChange]
    names: dict[str, str]  # REST / watch type name → schema id
    server_version: str | None
    counts: dict[str, int] = field(default_factory=dict)  # recorded frames by name (pings excluded)

    @property
    def dialect(self) -> Dialect:
        return self.header.dialect

    def lookup(self, name: str) -> str | None:
        """Schema id for a type name: its id or its plural, ignoring case, as both dialects resolve a type
        (apiserver's `LookupSchema`; norman `types/schemas.go` `doSchema` compares with EqualFold)."""
        if self.dialect == "steve":
            return self.names.get(name.lower())
        wanted = name.lower()
        found = self.names.get(name) or next((s for n, s in self.names.items() if n.lower() == wanted), None)
        return found or next((s for s in self.names.values() if s.lower() == wanted), None)

    def known_types(self) -> set[str]:
        return set(self.names.values())


def load_script(path: str | os.PathLike[str]) -> Script:
    """Read a recording once and build its script; a damaged tail is skipped (and logged), not fatal."""
    recording = read_recording(path, strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordingWarning)
        events = list(recording)
    for w in caught:
        log.warning("%s", w.message)
    return build_script(recording.header, events)


def build_script(header: RecordingHeader, events: list[Event]) -> Script:
    parts = urlsplit(header.endpoint)
    path = normalize_path(unquote(parts.path))
    query = parse_qs(parts.query, keep_blank_values=True)
    times = _relative_times(events)
    dialect = header.dialect
    norman: list[Frame] = []
    drops: list[float] = []
    base: dict[Key, dict[str, Any]] = {}
    base_revision: str | None = None
    changes: list[StateChange] = []
    names: dict[str, str] = {}
    counts: dict[str, int] = {}
    server_version = header.server_version
    steve_frames: list[tuple[Frame, Event]] = []
    sent: list[tuple[float, Event]] = []
    held_counts: dict[Key, dict[str, Any]] = {}

    for event, t in zip(events, times):
        if event.kind in ("snapshot", "resync") or (event.kind == "frame" and event.is_resource):
            _learn_names(event.data, dialect, names)
        if event.kind == "marker":
            if event.name == DISCONNECTED and event.info.get("code") not in _CLIENT_CLOSES:
                drops.append(t)
                if dialect == "norman":
                    norman.append(Frame(t, "", DISCONNECTED))
            elif event.name == ANOMALY and dialect == "norman" and isinstance(event.raw, str):
                norman.append(Frame(t, event.raw, ANOMALY))  # Rancher sent it: a faithful replay sends it too
            continue
        if event.kind == "sent":
            if dialect == "steve" and event.name in ("subscribe", "unsubscribe"):
                sent.append((t, event))
            continue
        change = _state_change(event, t)
        if change is not None and change.obj is not None and dialect == "steve" and count_rule.is_count(event.type):
            change = _merged_count(change, event, held_counts)
        if change is not None:
            if event.kind == "snapshot":
                if change.obj is not None:
                    base[change.key] = change.obj
                base_revision = later_revision(base_revision, change.revision)
            else:
                changes.append(change)
        if event.kind != "frame":
            continue
        if event.is_ping:
            version = event.info.get("version")
            if isinstance(version, str) and version and not header.server_version:
                server_version = version
            continue
        counts[event.name] = counts.get(event.name, 0) + 1
        base_type = event.data.get("baseType") if isinstance(event.data, dict) else None
        frame = Frame(
            t,
            event.raw or "",
            event.name,
            event.type,
            event.id,
            event.revision,
            object_namespace(event.data, dialect),
            base_type if isinstance(base_type, str) else None,
        )
        if dialect == "norman":
            norman.append(frame)
        else:
            steve_frames.append((frame, event))

    watches = _steve_watches(sent, steve_frames, names) if dialect == "steve" else {}
    end = max(times, default=0.0)
    return Script(
        header, path, query, end, norman, drops, watches, base, base_revision, changes, names, server_version, counts
    )


def normalize_path(path: str) -> str:
    """One spelling per endpoint: Norman's singular/plural scope paths, Steve's local-cluster prefix."""
    path = "/" + path.strip("/")
    for plural, singular in (("/v3/clusters/", "/v3/cluster/"), ("/v3/projects/", "/v3/project/")):
        if path.startswith(plural):
            path = singular + path[len(plural) :]
    if path.startswith("/k8s/clusters/local/"):
        path = path[len("/k8s/clusters/local") :]
    return path


def _relative_times(events: list[Event]) -> list[float]:
    out: list[float] = []
    origin: float | None = None
    last = 0.0
    for event in events:
        if origin is None:
            origin = event.t
        rel = event.t - origin
        if rel < last:  # a later recording of a folder starts its clock again: continue from here
            origin = event.t - last
            rel = last
        out.append(rel)
        last = rel
    return out


def _learn_names(obj: Any, dialect: Dialect, names: dict[str, str]) -> None:
    """Type names a REST client may use: schema ids, and the plural from the object's own `links.self`."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return
    typ: str = obj["type"]
    links = obj.get("links")
    self_url = links.get("self") if isinstance(links, dict) else None
    segments = [unquote(s) for s in urlsplit(self_url).path.split("/") if s] if isinstance(self_url, str) else []
    if dialect == "steve":
        names.setdefault(typ.lower(), typ)
        if "v1" in segments and segments.index("v1") + 1 < len(segments):
            names.setdefault(segments[segments.index("v1") + 1].lower(), typ)
        return
    declared = obj.get("baseType")
    base_type = declared if isinstance(declared, str) else typ
    names.setdefault(guess_plural(typ).lower(), typ)
    if len(segments) >= 2:
        names.setdefault(segments[-2], base_type)  # a deployment's self link lives under `workloads`


def _state_change(event: Event, t: float) -> StateChange | None:
    key = event_key(event)
    if key is None:
        return None
    data = event.data if isinstance(event.data, dict) else None
    return StateChange(t, key, None if removes(event) else data, event.revision)


def _merged_count(change: StateChange, event: Event, held: dict[Key, dict[str, Any]]) -> StateChange:
    """Steve's `count` events hold only the types that changed: REST lists the map merged so far (`held`)."""
    obj = change.obj
    assert obj is not None
    previous = held.get(change.key)
    if event.kind == "frame" and previous is not None:  # a listed count object is the whole map
        obj = count_rule.merge(previous, obj)
    held[change.key] = obj
    return StateChange(change.t, change.key, obj, change.revision)


def _steve_watches(
    sent: list[tuple[float, Event]], frames: list[tuple[Frame, Event]], names: dict[str, str]
) -> dict[str, RecordedWatch]:
    watches: dict[str, RecordedWatch] = {}
    for t, event in sent:
        doc = event.data if isinstance(event.data, dict) else {}
        key = steve.subscription_key(doc)
        if event.name == "subscribe" and key not in watches:
            fields = {k: doc[k] for k in (*KEY_FIELDS, "debounceMs") if doc.get(k) not in (None, "", 0)}
            watches[key] = RecordedWatch(key, fields, message=event.raw, start=t)
    by_echo: dict[str, list[RecordedWatch]] = {}
    for watch in watches.values():
        by_echo.setdefault(echo_key(watch.fields), []).append(watch)
    for frame, event in frames:
        if event.watch and event.watch.get("resourceType"):
            echo = echo_key(event.watch)
            owners = by_echo.get(echo)
            if owners is None:  # no subscribe message recorded (a partial capture): the echo tells the key
                fields = {k: event.watch[k] for k in KEY_FIELDS if event.watch.get(k)}
                owners = by_echo[echo] = [watches.setdefault(echo, RecordedWatch(echo, fields, start=frame.t))]
        else:  # apiserver before v0.6.1 echoed nothing on object events: attribute by type (and namespace)
            owners = [
                w
                for w in watches.values()
                if _same_type(w, frame, names)
                and (not w.fields.get("namespace") or w.fields["namespace"] == frame.namespace)
            ][:1]
        for watch in owners:
            if frame.name == "resource.start" or frame.name in STEVE_STREAM:
                watch.started = True
            if frame.name in STEVE_STREAM:
                watch.frames.append(frame)
                if watch.schema is None and frame.type and frame.name in RESOURCE_EVENTS:
                    watch.schema = frame.type
            if watch.start is None:
                watch.start = frame.t
    for watch in watches.values():
        asked = str(watch.fields.get("resourceType", ""))
        if watch.schema is None:
            # Rancher started it but sent no object: its schema exists, named as the client named it.
            watch.schema = names.get(asked.lower()) or (asked if watch.started else None)
        if watch.schema is not None and watch.started:
            names.setdefault(asked.lower(), watch.schema)
    return watches


def _same_type(watch: RecordedWatch, frame: Frame, names: Mapping[str, str]) -> bool:
    """Steve's type resolution: the schema the recording named that way, else an id or plural in any case."""
    asked = str(watch.fields.get("resourceType", ""))
    return frame.type is not None and (names.get(asked.lower()) == frame.type or same_type(asked, frame.type))


class StateTimeline:
    """The objects (and Steve revision) at a replay position: the snapshot, then every change up to it.

    Positions usually only move forward, so the fold continues from the last answer instead of
    starting over; a position before it (a loop starting over) folds again from the snapshot.
    """

    def __init__(self, script: Script) -> None:
        self._script = script
        self._times = [c.t for c in script.changes]
        self._done = 0
        self._mirror = ObjectMirror(script.dialect, script.base)
        self._revision = script.base_revision

    def at(self, position: float) -> tuple[dict[Key, dict[str, Any]], str | None]:
        upto = bisect_right(self._times, position)
        if upto < self._done:
            self._done, self._revision = 0, self._script.base_revision
            self._mirror = ObjectMirror(self._script.dialect, self._script.base)
        for change in self._script.changes[self._done : upto]:
            if change.obj is None:
                self._mirror.remove(change.key)
            else:
                self._mirror.put(change.key, change.obj)
            self._revision = later_revision(self._revision, change.revision)
        self._done = upto
        return self._mirror.objects, self._revision


__all__ = [
    "Frame",
    "RecordedWatch",
    "Script",
    "StateChange",
    "StateTimeline",
    "build_script",
    "echo_key",
    "load_script",
    "normalize_path",
    "revision_after",
]
