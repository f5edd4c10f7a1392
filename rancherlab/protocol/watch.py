"""The Steve watch state machine: what a client does about each `/v1/subscribe` message, as pure code.

A `WatchMachine` holds the watches of one stream. It takes events (and the time, for the back-off) and returns
`Action`s for a driver to execute: list over REST (`Relist`), send a subscribe message (`Rewatch`), give one watch
up (`Stopped`) or end the stream (`Fatal`). It never does I/O and never reads a clock.

The behaviour is the Rancher dashboard's (rancher/dashboard `shell/plugins/steve/subscribe.js`,
`shell/utils/back-off.ts`) on apiserver's messages (rancher/apiserver `pkg/subscribe/watcher.go`):

* `resource.start` marks a watch started; object events move its revision forward (`later_revision`) and reset
  its retry count;
* `resource.error` is matched by substring, ignoring case: "too old" → re-list when the watch stops; "failed to
  find schema" / "does not support watching" → `Fatal` (retrying cannot help); a permission text → `Stopped` when
  the watch stops, and `Fatal` once every watch is refused;
* `resource.stop` → watch again at the last revision (re-listing first after "too old" or without a revision),
  after the dashboard's back-off `n == 0 ? 0 : n² × 250 ms` for the n-th consecutive stop (n capped at 10, reset
  after 60 s without a stop or by any object event);
* `resource.changes` (notification mode) carries no object: its revision is kept and the watch is re-listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from .event import RESOURCE_EVENTS, Event
from .objects import Key, event_key, later_revision, object_namespace, removes
from .steve import CHANGES_MODE, Watch, echo_key, same_type

TOO_OLD: Final = "too old"
# apiserver `pkg/subscribe/watcher.go`: the type is unknown (or invisible to the user) or cannot be watched.
SCHEMA_MISSING: Final = ("failed to find schema", "does not support watching")
# Permission texts: steve `pkg/accesscontrol`, the Kubernetes apiserver, and those the dashboard matches.
PERMISSION: Final = (
    "permissiondenied",
    "watch not allowed",
    "does not allow this method",
    "can not list",
    "cannot list",
    "forbidden",
)
RETRY_CAP: Final = 10  # the dashboard's back-off gives up after 10; rancherlab keeps its largest delay
RETRY_RESET_SECONDS: Final = 60.0
DEFAULT_RETRY_UNIT: Final = 0.25  # seconds: the dashboard's 250 ms

ErrorKind = Literal["too_old", "unknown_type", "denied", "other"]


def classify_error(text: str) -> ErrorKind:
    """What a `resource.error` text means, matched by substring ignoring case as the dashboard does."""
    low = text.lower()
    if TOO_OLD in low:
        return "too_old"
    if any(s in low for s in SCHEMA_MISSING):
        return "unknown_type"
    if any(s in low for s in PERMISSION):
        return "denied"
    return "other"


def retry_delay(n: int, unit: float = DEFAULT_RETRY_UNIT) -> float:
    """Seconds to wait before the n-th consecutive re-watch of one watch: 0, then n² × `unit` (n capped at 10).

    The dashboard's `shell/utils/back-off.ts`: 0 (1 ms), 0.25 s, 1 s, 2.25 s, 4 s, ... with the default unit.
    """
    n = min(max(n, 0), RETRY_CAP)
    return 0.0 if n == 0 else n * n * unit


@dataclass(eq=False)
class WatchState:
    """What the client knows about one watch: its revision, the objects it covers, where it is in its life."""

    watch: Watch
    revision: str | None = None  # where to resume: the latest revision seen or listed
    keys: set[Key] = field(default_factory=set)  # the objects this watch currently covers
    listed: bool = False  # has REST listed it once (its snapshot)?
    started: bool = False  # `resource.start` seen on the current subscription
    too_old: bool = False  # the current subscription was refused as "too old"
    denied: str | None = None  # the permission error of the current subscription
    ended: bool = False  # given up for good (refused)
    retries: int = 0  # consecutive stops without an object event in between
    last_stop: float | None = None  # time of the last stop, on the caller's clock

    @property
    def echo_key(self) -> str:
        return self.watch.echo_key


@dataclass(frozen=True, slots=True)
class Relist:
    """After `delay` seconds, list what the watch covers over REST (see `WatchMachine.listed`).

    With `then_watch`, subscribe again afterwards at the watch's revision (the listing's). A listing of a watch
    not `listed` yet is its snapshot (when snapshots are on); any later one is a resync.
    """

    state: WatchState
    delay: float = 0.0
    then_watch: bool = True


@dataclass(frozen=True, slots=True)
class Rewatch:
    """After `delay` seconds, send the watch's subscribe message with `revision` (None: no `resourceVersion`)."""

    state: WatchState
    revision: str | None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Stopped:
    """The server refused this watch for good (`error`); the other watches go on."""

    state: WatchState
    error: str


@dataclass(frozen=True, slots=True)
class Fatal:
    """Retrying cannot help: `reason` "unknown_type" (the type does not exist for this user) or "denied" (every
    watch refused); `error` is the server's text."""

    state: WatchState
    reason: Literal["unknown_type", "denied"]
    error: str


Action = Relist | Rewatch | Stopped | Fatal


class WatchMachine:
    """The client side of every Steve watch of one stream (see the module docstring).

    `snapshot`: list each watch before its first subscription; `resync`: list again after a gap (a new connection
    without a revision, "too old", a notification). `retry_unit` scales the back-off (seconds; the dashboard's
    0.25). Times given to `receive` are seconds on any monotonic clock.
    """

    def __init__(
        self,
        watches: Iterable[Watch],
        *,
        snapshot: bool = True,
        resync: bool = True,
        retry_unit: float = DEFAULT_RETRY_UNIT,
        retry_reset: float = RETRY_RESET_SECONDS,
    ) -> None:
        self.states: tuple[WatchState, ...] = tuple(WatchState(w) for w in watches)
        self.snapshot = snapshot
        self.resync = resync
        self.retry_unit = retry_unit
        self.retry_reset = retry_reset

    def connected(self) -> list[Action]:
        """A new connection is open: what to do for each watch not given up, in order (list, then subscribe)."""
        actions: list[Action] = []
        for w in self.states:
            if w.ended:
                continue
            w.started = w.too_old = False
            w.denied = None
            if w.revision is None and (self.resync if w.listed else self.snapshot):
                actions.append(Relist(w))
            else:
                actions.append(Rewatch(w, w.revision))
        return actions

    def is_snapshot(self, w: WatchState) -> bool:
        """Is a listing of `w` now its snapshot (else a resync)?"""
        return not w.listed and self.snapshot

    def listed(self, w: WatchState, keys: Iterable[Key], revision: str | None) -> None:
        """A listing of `w` is done: it covers `keys`, and the collection's `revision` (if any) is where to resume."""
        w.keys = set(keys)
        w.listed = True
        if revision is not None:
            w.revision = revision

    def receive(self, event: Event, now: float) -> list[Action]:
        """Take one event of the stream (anything: unrelated events are ignored); returns what to do."""
        if event.kind != "frame" or event.dialect != "steve":
            return []
        w = self.match(event)
        if event.name in RESOURCE_EVENTS:
            if w is not None and not event.info.get("disguised_error"):
                w.revision = later_revision(w.revision, event.revision)
                w.retries = 0
                key = event_key(event)
                if key is not None:
                    (w.keys.discard if removes(event) else w.keys.add)(key)
            return []
        if w is None:
            return []
        if event.name == "resource.start":
            w.started = True
        elif event.name == "resource.error":
            error = str(event.info.get("error", ""))
            kind = classify_error(error)
            if kind == "too_old":
                w.too_old = True
            elif kind == "unknown_type":
                return [Fatal(w, "unknown_type", error)]
            elif kind == "denied":
                w.denied = error
        elif event.name == "resource.stop":
            return self._stopped(w, now)
        elif event.name == CHANGES_MODE:
            w.revision = later_revision(w.revision, event.revision)
            if self.resync:  # notifications carry no object: the list does
                return [Relist(w, then_watch=False)]
        return []

    def _stopped(self, w: WatchState, now: float) -> list[Action]:
        if w.denied is not None:
            w.ended = True
            actions: list[Action] = [Stopped(w, w.denied)]
            if all(x.ended for x in self.states):
                actions.append(Fatal(w, "denied", w.denied))
            return actions
        if w.last_stop is None or now - w.last_stop > self.retry_reset:
            w.retries = 0
        w.last_stop = now
        delay = retry_delay(w.retries, self.retry_unit)
        w.retries += 1
        relist = w.too_old or w.revision is None
        too_old, w.too_old, w.started = w.too_old, False, False
        if relist and (self.resync or self.snapshot):
            w.revision = None  # the listing gives the revision to resume from
            return [Relist(w, delay)]
        if too_old:
            w.revision = None  # nothing to list with, and the old revision cannot be resumed: watch from now
        return [Rewatch(w, w.revision, delay)]

    def match(self, event: Event) -> WatchState | None:
        """The watch a server message belongs to: by its echoed key (apiserver ≥ 0.6.1), else by type.

        Older servers echo nothing on object events; those belong to the watch whose type names the object's type
        (id or plural, ignoring case), preferring one on the object's namespace. With a single watch, every
        message that echoes no key, but a ping, is its own.
        """
        echo: Mapping[str, object] = event.watch or {}
        if echo.get("resourceType"):
            key = echo_key(echo)
            for w in self.states:
                if w.echo_key == key:
                    return w
        typ = str(echo.get("resourceType") or event.type or "")
        candidates = [w for w in self.states if typ and same_type(w.watch.type, typ)]
        if len(candidates) > 1:
            ns = object_namespace(event.data)
            candidates = [w for w in candidates if w.watch.namespace in (None, ns)] or candidates
        if candidates:
            return candidates[0]
        if len(self.states) == 1 and event.name != "ping" and not echo.get("resourceType"):
            return self.states[0]
        return None


__all__ = [
    "DEFAULT_RETRY_UNIT",
    "PERMISSION",
    "RETRY_CAP",
    "RETRY_RESET_SECONDS",
    "SCHEMA_MISSING",
    "TOO_OLD",
    "Action",
    "ErrorKind",
    "Fatal",
    "Relist",
    "Rewatch",
    "Stopped",
    "WatchMachine",
    "WatchState",
    "classify_error",
    "retry_delay",
]
