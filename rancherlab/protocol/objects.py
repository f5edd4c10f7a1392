"""The object rules of both dialects: which object an event is about, its revision and namespace, how two revisions
compare, what removes an object, and the mirror a consumer holds by applying events in order.

Pure code (no sockets, no clocks). The live stream, the replay server, the analysis state and the tests all use
these rules instead of restating them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple

from .event import RESOURCE_EVENTS, RESYNC_FINISHED, RESYNC_STARTED, Dialect, Event, Kind, marker

Key = tuple[str, str]
"""An object's identity in a stream: its `(type, id)` (Norman schema id and id; Steve schema id and `ns/name`)."""

# Norman, and the Rancher UI on top of it, treat a change into one of these states as a removal: a deletion with
# finalizers sends changes before the final remove (rancher/ui `lib/shared/addon/mixins/subscribe.js`, whose
# `processQueue` drops objects in `REMOVEDISH_STATES`).
REMOVED_STATES: Final = frozenset({"removed", "purging", "purged"})

MergeRule = Callable[[Any, Any], Any]
"""`merge(previous, incoming) -> held`: how an update of a type combines with the object already held.

`previous` is the object held before (None when there is none); the result is what the mirror holds next. Rules
must not mutate either argument.
"""


# --- revisions ------------------------------------------------------------------------------------------


def compare_revisions(a: str, b: str) -> int | None:
    """-1, 0 or 1 as revision `a` is older than, equal to or newer than `b`; None when they cannot be compared.

    Kubernetes resource versions are etcd's revision counter written in decimal. Kubernetes documented them as
    opaque strings for years ("API concepts: resource versions"), then made them comparable as integers for
    objects of one resource (KEP-5504, stable in v1.35; k8s.io/apimachinery `pkg/util/resourceversion`
    `CompareResourceVersion`). The Rancher dashboard compares them as numbers only (rancher/dashboard
    `shell/plugins/steve/revision.ts`). So: two revisions of ASCII decimal digits compare as integers (any length;
    a superset of what `CompareResourceVersion` accepts, so it never answers differently for a valid pair);
    anything else is opaque and not comparable. Only compare revisions of one resource type.
    """
    if not (a.isascii() and a.isdigit() and b.isascii() and b.isdigit()):
        return None
    x, y = int(a), int(b)
    return (x > y) - (x < y)


def later_revision(old: str | None, new: str | None) -> str | None:
    """The revision to resume from after seeing `new` when `old` was the latest: the greater of the two.

    A missing revision never replaces a known one. When the two cannot be compared (see `compare_revisions`), the
    one seen last wins: a watch delivers events in revision order, so the latest arrival is the server's latest.
    """
    if old is None or new is None:
        return new if new is not None else old
    order = compare_revisions(new, old)
    return old if order is not None and order < 0 else new


def revision_after(revision: str | None, floor: str) -> bool:
    """Does an event at `revision` come after `floor` (a watch resuming at `floor` must deliver it)?

    False without a revision; True when the two cannot be compared, so that nothing is skipped on a guess.
    """
    if revision is None:
        return False
    order = compare_revisions(revision, floor)
    return order is None or order > 0


# --- one object ---------------------------------------------------------------------------------------


def object_key(obj: Any) -> Key | None:
    """The `(type, id)` of an object as Rancher formats it (both dialects put them at the top), or None."""
    if not isinstance(obj, Mapping):
        return None
    typ, oid = obj.get("type"), obj.get("id")
    return (typ, oid) if isinstance(typ, str) and isinstance(oid, str) else None


def object_revision(obj: Any) -> str | None:
    """A Steve object's `metadata.resourceVersion` as text (None when absent or empty). Norman objects have none."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return str(rv) if rv not in (None, "") else None


def object_namespace(obj: Any, dialect: Dialect = "steve") -> str | None:
    """The namespace an object lives in: Steve's `metadata.namespace`, Norman's `namespaceId`; None if none."""
    if not isinstance(obj, Mapping):
        return None
    if dialect == "norman":
        ns = obj.get("namespaceId")
        return ns if isinstance(ns, str) else None
    meta = obj.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    return ns if isinstance(ns, str) else None


# Norman keeps the project of a namespace in this annotation; Steve shows it only there.
PROJECT_ANNOTATION: Final = "field.cattle.io/projectId"
# Rancher's own vocabulary for `transitioning` (Norman's field); Steve's two booleans map onto it.
TRANSITIONING: Final = ("no", "yes", "error")


class ObjectSummary(NamedTuple):
    """What Rancher says about an object at a glance: `state` ("active", "running", ...), `transitioning` (one of
    `TRANSITIONING`), `namespace` and `project` (`c-abc12:p-xyz34`), each None when the object does not say."""

    state: str | None
    transitioning: str | None
    namespace: str | None
    project: str | None


_NO_SUMMARY: Final = ObjectSummary(None, None, None, None)


def object_summary(dialect: Dialect, data: Any) -> ObjectSummary:
    """The `ObjectSummary` of an object, from where each dialect keeps it.

    Norman: top-level `state`, `transitioning` ("yes"/"no"/"error"), `namespaceId`, `projectId` (rancher/norman
    `types/mapper` and rancher/rancher's status mappers). Steve: `metadata.state.name` and
    `metadata.state.error`/`.transitioning` (booleans; rancher/steve `pkg/summarycache`), `metadata.namespace`,
    and the project only on namespaces (annotation `field.cattle.io/projectId`). Empty strings count as absent.
    """
    if not isinstance(data, dict):
        return _NO_SUMMARY
    if dialect == "norman":
        trans = data.get("transitioning")
        return ObjectSummary(
            _text(data.get("state")),
            trans if trans in TRANSITIONING else None,
            _text(object_namespace(data, "norman")),
            _text(data.get("projectId")),
        )
    meta = data.get("metadata")
    if not isinstance(meta, dict):
        return _NO_SUMMARY
    st = meta.get("state")
    state = trans = None
    if isinstance(st, dict):
        state = _text(st.get("name"))
        if st.get("error") is True:
            trans = "error"
        elif st.get("transitioning") is True:
            trans = "yes"
        elif st.get("transitioning") is False or st.get("error") is False:
            trans = "no"
    project = None
    ann = meta.get("annotations")
    if data.get("type") == "namespace" and isinstance(ann, dict):
        project = _text(ann.get(PROJECT_ANNOTATION))
    return ObjectSummary(state, trans, _text(object_namespace(data, "steve")), project)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def is_removal(name: Any, dialect: Any, state: Any = None) -> bool:
    """Does an object event named `name` remove its object? `state` is the Norman object's `state` field.

    `resource.remove` removes in both dialects; in Norman a change into a removed state does too (`REMOVED_STATES`).
    Steve's `metadata.state` is a summary, never a removal: Steve sends `resource.remove` for every deletion.
    """
    return name == "resource.remove" or (dialect == "norman" and state in REMOVED_STATES)


def event_key(event: Event) -> Key | None:
    """The object an event creates, changes or removes, or None for every other event.

    Object events are `resource.create/change/remove` frames (except Steve's errors disguised as a change,
    rancher/rancher#40131) and snapshot/resync objects, with both a type and an id.
    """
    if event.kind not in ("frame", "snapshot", "resync") or event.name not in RESOURCE_EVENTS:
        return None
    if event.info.get("disguised_error") or event.type is None or event.id is None:
        return None
    return (event.type, event.id)


def removes(event: Event) -> bool:
    """Does this object event remove its object (see `is_removal`)?"""
    state = event.data.get("state") if isinstance(event.data, Mapping) else None
    return is_removal(event.name, event.dialect, state)


def object_event(dialect: Dialect, kind: Kind, name: str, obj: dict[str, Any], **info: Any) -> Event:
    """An event for an object read from REST rather than received (`kind` "snapshot" or "resync").

    It carries the object's type, id and (Steve) revision as a frame for it would; `info` says why it was emitted
    (e.g. `resync="changed"`). Stream position (seq, times) is stamped by the emitter.
    """
    typ, oid = obj.get("type"), obj.get("id")
    return Event(
        0,
        0,
        0.0,
        None,
        dialect,
        kind,
        name,
        type=typ if isinstance(typ, str) else None,
        id=oid if isinstance(oid, str) else None,
        revision=object_revision(obj) if dialect == "steve" else None,
        data=obj,
        info=info,
    )


# --- the mirror -----------------------------------------------------------------------------------------


class ObjectMirror:
    """The objects a consumer holds after applying a stream's events in order, keyed by `(type, id)`.

    `apply(event)` upserts or removes one object; `snapshot(listed)` and `resync(listed, covered)` take a REST
    listing as the truth and return the events that tell a consumer so (a consumer that applies those events
    holds what the mirror holds).

    Merge hook: `merge` maps a type to a `MergeRule` for resources whose updates are partial. For such a type,
    `apply` and `put` hold `merge(previous, incoming)` instead of `incoming`; every other type is replaced whole.
    A listing is always whole, so `snapshot`, `resync` and `load` replace without merging. Example: Steve's `count`
    sends its whole map once, then only the types whose count changed (rancher/steve `pkg/resources/counts`).
    """

    def __init__(
        self,
        dialect: Dialect,
        objects: Mapping[Key, Any] | None = None,
        *,
        merge: Mapping[str, MergeRule] | None = None,
    ) -> None:
        self.dialect: Dialect = dialect
        self.merge: dict[str, MergeRule] = dict(merge or {})
        self._objects: dict[Key, Any] = dict(objects or {})

    # reading
    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def __iter__(self) -> Iterator[Key]:
        return iter(self._objects)

    def get(self, key: Key, default: Any = None) -> Any:
        return self._objects.get(key, default)

    @property
    def objects(self) -> dict[Key, Any]:
        """The held objects (a live view: do not modify it; use `put`/`remove`/`apply`)."""
        return self._objects

    def keys_of(self, types: Iterable[str]) -> set[Key]:
        """Keys of the held objects of the given types."""
        wanted = set(types)
        return {k for k in self._objects if k[0] in wanted}

    # writing
    def put(self, key: Key, obj: Any) -> Any:
        """Hold `obj` for `key`, merged with the held one if its type has a merge rule; returns what is held."""
        rule = self.merge.get(key[0])
        held = rule(self._objects.get(key), obj) if rule is not None else obj
        self._objects[key] = held
        return held

    def remove(self, key: Key) -> Any:
        """Forget `key`; returns the object that was held (None if none)."""
        return self._objects.pop(key, None)

    def apply(self, event: Event) -> bool:
        """Apply one event; True if it was an object event (see `event_key`), False if it was ignored."""
        key = event_key(event)
        if key is None:
            return False
        if removes(event):
            self.remove(key)
        else:
            self.put(key, event.data)
        return True

    def load(self, listed: Mapping[Key, Any]) -> None:
        """Hold every listed object as it is (a listing is whole: no merge)."""
        self._objects.update(listed)

    # listings
    def snapshot(self, listed: Mapping[Key, dict[str, Any]]) -> list[Event]:
        """Take a first listing: hold its objects and return one `snapshot` `resource.create` per object, by key."""
        self.load(listed)
        return [object_event(self.dialect, "snapshot", "resource.create", listed[key]) for key in sorted(listed)]

    def resync(
        self,
        listed: Mapping[Key, dict[str, Any]],
        covered: Iterable[str],
        *,
        old_keys: Iterable[Key] | None = None,
        watch: Mapping[str, Any] | None = None,
    ) -> list[Event]:
        """Take a listing as the whole truth for the `covered` types; return the events that say what changed.

        The events: a `resync.started` marker; one `resync` event per listed object in key order, `resource.create`
        with `info["resync"]="appeared"` or `resource.change` with "changed"/"unchanged"; one `resource.remove`
        ("vanished") per object held before and not listed, in key order; a `resync.finished` marker with the
        four counts. `old_keys` limits what may vanish (a Steve watch's own objects; default: every held object of
        a covered type). `watch` is the key fields of the Steve watch the listing is for, put on both markers.
        """
        types = sorted(set(covered))
        keys = set(old_keys) if old_keys is not None else self.keys_of(types)
        old = {k: self._objects[k] for k in keys if k in self._objects}
        counts: dict[str, Any] = {"appeared": 0, "changed": 0, "unchanged": 0, "vanished": 0}
        out = [marker(RESYNC_STARTED, self.dialect, watch=watch, types=types)]
        for key in sorted(listed):
            obj = listed[key]
            how = "appeared" if key not in old else ("changed" if old[key] != obj else "unchanged")
            counts[how] += 1
            name = "resource.create" if how == "appeared" else "resource.change"
            out.append(object_event(self.dialect, "resync", name, obj, resync=how))
            self._objects[key] = obj
        for key in sorted(old.keys() - listed.keys()):
            counts["vanished"] += 1
            out.append(object_event(self.dialect, "resync", "resource.remove", old[key], resync="vanished"))
            self._objects.pop(key, None)
        out.append(marker(RESYNC_FINISHED, self.dialect, watch=watch, types=types, **counts))
        return out


def listed_by_key(objects: Iterable[Any]) -> dict[Key, dict[str, Any]]:
    """Listed objects by `(type, id)`; objects without both are left out (Rancher lists never have such)."""
    out: dict[Key, dict[str, Any]] = {}
    for obj in objects:
        key = object_key(obj)
        if key is not None:
            out[key] = obj
    return out


__all__ = [
    "REMOVED_STATES",
    "Key",
    "MergeRule",
    "ObjectMirror",
    "compare_revisions",
    "event_key",
    "is_removal",
    "later_revision",
    "listed_by_key",
    "object_event",
    "object_key",
    "object_namespace",
    "object_revision",
    "removes",
    "revision_after",
]
