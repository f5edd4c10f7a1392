"""Steve `/v1/subscribe` sessions: the client's watches, both stores, notification mode, slow consumers."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .._wsserver import MAX_WATCHES, TOO_MANY_WATCHES, Outbox
from ..protocol import counts as protocol_counts
from ..protocol import steve
from ..protocol.steve import Subscribe
from .formats import Summary, steve_lookup, steve_schemas, steve_view, summarize
from .profiles import LATEST, RancherProfile
from .world import Change, Resource, World

Store = Literal["sql", "proxy"]
_ACTIONS = {"ADDED": "resource.create", "MODIFIED": "resource.change", "DELETED": "resource.remove"}
SLOW_READER_GRACE = 0.010  # apiserver waits 10 ms for room in the buffer before dropping a watch


@dataclass
class SteveConfig:
    store: Store = "sql"
    retain: int = 1000  # events kept per type (SQL ring; also the proxy store's etcd window)
    watch_timeout: float | None = None  # proxy store only: CATTLE_WATCH_TIMEOUT_SECONDS
    base_revision: int = 0  # the revision the server started at: nothing older can be resumed
    forbid: frozenset[str] = frozenset()  # schema ids the caller may list but not watch
    count_interval: float = 5.0  # the `count` resource sends merged updates at most this often
    profile: RancherProfile = LATEST  # which Rancher release's frames to send (`profiles.PROFILES`)


@dataclass(eq=False)
class SteveWatch:
    sub: Subscribe
    schema: str
    echo: dict[str, str]
    pending: list[str] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    # notification mode: is the first event still to come, is a trailing notification armed, latest revision
    first: bool = True
    armed: bool = False
    latest: str = ""
    dirty: set[str] = field(default_factory=set)  # `count` watch: types changed since the last update


class SteveSession:
    """One upgraded `/v1` socket: decodes client messages and streams each watch's events."""

    def __init__(
        self, outbox: Outbox, world: World, cluster: str, base_url: str, prefix: str, config: SteveConfig
    ) -> None:
        self.outbox = outbox
        self.world = world
        self.cluster = cluster
        self.base_url = base_url
        self.prefix = prefix
        self.config = config
        self.watches: dict[str, SteveWatch] = {}

    # --- client messages -----------------------------------------------------------------------
    def receive(self, message: str | bytes) -> None:
        request = steve.client_request(message, self.watches)
        if request.action == "invalid":
            self.outbox.push(request.reply)
        elif request.action == "stop":
            self._end(self.watches[request.sub.key])
        elif request.action == "start":
            self._start(request.sub)

    def _start(self, sub: Subscribe) -> None:
        echo = sub.echo()
        if len(self.watches) >= MAX_WATCHES:
            self.outbox.push(steve.error_event(TOO_MANY_WATCHES, echo))
            self.outbox.push(steve.stop_event(echo))
            return
        if protocol_counts.is_count(sub.resource_type) or sub.resource_type.lower() == protocol_counts.PLURAL:
            self._start_count(SteveWatch(sub, "count", echo))
            return
        profile = self.config.profile
        schema = steve_lookup(sub.resource_type)
        if schema is None:
            self.outbox.push(profile.error_event(f"failed to find schema {sub.resource_type}", echo))
            self.outbox.push(steve.stop_event(echo))
            return
        if schema in self.config.forbid:
            self.outbox.push(
                profile.error_event(f"PermissionDenied 403: can not list {sub.resource_type}", echo, schema)
            )
            self.outbox.push(steve.stop_event(echo))
            return
        watch = SteveWatch(sub, schema, echo)
        self.watches[sub.key] = watch
        self.outbox.push(profile.start_event(echo))
        rv = sub.resource_version
        proxy = self.config.store == "proxy"
        if proxy and rv in ("", "0", "-1"):
            for res in self.world.resources(schema, self.cluster):
                self._send(watch, "resource.create", res, res.obj["metadata"]["resourceVersion"])
        elif rv:
            backlog = self._since(schema, rv)
            if backlog is None:
                text = (
                    f"event watch error: too old resource version: {rv} ({self.world.revision})"
                    if proxy
                    else "resourceversion too old"
                )
                self.outbox.push(profile.error_event(text, echo, schema))
                self._end(watch)
                return
            for change in backlog:
                self.deliver_to(watch, change)
        if proxy and self.config.watch_timeout:
            watch.timer = asyncio.get_running_loop().call_later(self.config.watch_timeout, self._expire, watch)

    def _since(self, schema: str, rv: str) -> list[Change] | None:
        """The retained changes after `rv`, or None when `rv` is older than what is retained ("too old")."""
        if not rv.isdigit():
            return None
        asked = int(rv)
        history = self.world.history_for(schema, self.cluster)
        retain = self.config.retain
        # the world may have let go of older changes (its `history_limit`): nothing before that can be resumed
        floor = max(self.config.base_revision, self.world.trimmed_revision)
        oldest = history[-retain - 1].revision if len(history) > retain else floor
        if asked < oldest or asked > self.world.revision:
            return None
        return [c for c in history[-retain:] if c.revision > asked]

    def _expire(self, watch: SteveWatch) -> None:
        if self.watches.get(watch.sub.key) is watch:
            self._end(watch)

    def _end(self, watch: SteveWatch) -> None:
        """Remove the key first, then send exactly one stop, as apiserver does."""
        if self.watches.pop(watch.sub.key, None) is None:
            return
        if watch.timer:
            watch.timer.cancel()
        self.outbox.push(steve.stop_event(watch.echo))

    def close(self) -> None:
        for watch in self.watches.values():
            if watch.timer:
                watch.timer.cancel()
        self.watches.clear()

    # --- the `count` resource ---------------------------------------------------------------------
    def _start_count(self, watch: SteveWatch) -> None:
        """Steve's counts: the whole map at once, then only the types that changed, at most every interval."""
        self.watches[watch.sub.key] = watch
        self.outbox.push(self.config.profile.start_event(watch.echo))
        self._send_counts(watch, None)
        self._arm_counts(watch)

    def _arm_counts(self, watch: SteveWatch) -> None:
        watch.timer = asyncio.get_running_loop().call_later(self.config.count_interval, self._flush_counts, watch)

    def _flush_counts(self, watch: SteveWatch) -> None:
        if self.watches.get(watch.sub.key) is not watch:
            return
        if watch.dirty:
            # steve#58 (Rancher 2.7.2) sends only the changed types; before, the whole map (the profile says which)
            self._send_counts(watch, set(watch.dirty) if self.config.profile.partial_counts else None)
            watch.dirty.clear()
        self._arm_counts(watch)

    def _send_counts(self, watch: SteveWatch, only: set[str] | None) -> None:
        data = count_object(self.world, self.cluster, self.base_url, self.prefix, only, self.config.forbid)
        self._offer(watch, self.config.profile.event("resource.change", data=data, revision=None, echo=watch.echo))

    # --- server events ---------------------------------------------------------------------------
    def deliver(self, change: Change) -> None:
        if change.resource.cluster != self.cluster:
            return
        for watch in list(self.watches.values()):
            if watch.schema == change.resource.kind:
                self.deliver_to(watch, change)
            elif watch.schema == "count":
                watch.dirty.add(change.resource.kind)

    def deliver_to(self, watch: SteveWatch, change: Change) -> None:
        res = change.resource
        if not _selected(watch.sub, res):
            return
        if watch.sub.mode == steve.CHANGES_MODE:
            self._notify(watch, str(change.revision))
        else:
            self._send(watch, _ACTIONS[change.action], res, str(change.revision))

    def _send(self, watch: SteveWatch, name: str, res: Resource, revision: str) -> None:
        data = steve_view(self.world, res, watch.schema, self.base_url, self.prefix)
        if data is None:
            return
        self._offer(watch, self.config.profile.event(name, data=data, revision=revision, echo=watch.echo))

    def _notify(self, watch: SteveWatch, revision: str) -> None:
        """First event at once; then one trailing notification per debounce window, with the latest revision."""
        watch.latest = revision
        if watch.first:
            watch.first = False
            self._offer(watch, self._changes(watch))
        elif not watch.armed:
            watch.armed = True
            delay = (watch.sub.debounce_ms or steve.DEFAULT_DEBOUNCE_MS) / 1000
            asyncio.get_running_loop().call_later(delay, self._fire, watch)

    def _fire(self, watch: SteveWatch) -> None:
        watch.armed = False
        if self.watches.get(watch.sub.key) is watch:
            self._offer(watch, self._changes(watch))

    @staticmethod
    def _changes(watch: SteveWatch) -> str:
        return steve.encode_event("resource.changes", data=steve.SUBSCRIBE_DATA, revision=watch.latest, echo=watch.echo)

    def _offer(self, watch: SteveWatch, text: str) -> None:
        if watch.pending or not self.outbox.offer(text):
            watch.pending.append(text)
            if len(watch.pending) == 1:
                asyncio.get_running_loop().call_later(SLOW_READER_GRACE, self._retry, watch)

    def _retry(self, watch: SteveWatch) -> None:
        """After the grace period a watch that still cannot enqueue is dropped with `resource.stop`."""
        while watch.pending:
            if not self.outbox.offer(watch.pending[0]):
                watch.pending.clear()
                self._end(watch)
                return
            watch.pending.pop(0)


def count_object(
    world: World,
    cluster: str,
    base_url: str,
    prefix: str,
    only: set[str] | None = None,
    forbid: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Steve's count object: the whole map (`only=None`, what REST lists and a watch sends first) or an update.

    Schemas the caller may not list or watch are left out, as steve's `schemasToWatch` does.
    """
    return {
        "id": protocol_counts.ID,
        "type": protocol_counts.TYPE,
        "links": {"self": f"{base_url}{prefix}/v1/{protocol_counts.PLURAL}/{protocol_counts.ID}"},
        "counts": {k: v for k, v in counts(world, cluster, only).items() if k not in forbid},
    }


def counts(world: World, cluster: str, only: set[str] | None = None) -> dict[str, Any]:
    """Steve's `count` map per schema: summary (count, states, errors, transitioning) and per namespace.

    Zero values are left out, as Go's `omitempty` does.
    """

    def add(into: dict[str, Any], state: Summary) -> None:
        into["count"] = into.get("count", 0) + 1
        states = into.setdefault("states", {})
        states[state.state] = states.get(state.state, 0) + 1
        if state.error:
            into["errors"] = into.get("errors", 0) + 1
        if state.transitioning:
            into["transitioning"] = into.get("transitioning", 0) + 1

    out: dict[str, Any] = {}
    for res in world.resources(cluster=cluster):
        if res.kind not in steve_schemas() or (only is not None and res.kind not in only):
            continue
        entry = out.setdefault(res.kind, {"summary": {}})
        state = summarize(res)
        add(entry["summary"], state)
        if res.namespace:
            add(entry.setdefault("namespaces", {}).setdefault(res.namespace, {}), state)
    for kind in only or ():
        out.setdefault(kind, {"summary": {}})  # a type whose last object went away
    return out


def _selected(sub: Subscribe, res: Resource) -> bool:
    if sub.namespace and res.namespace != sub.namespace:
        return False
    if sub.id:
        ns, _, name = sub.id.rpartition("/")
        if name != res.name or (ns and ns != res.namespace):
            return False
    if sub.selector:
        labels = res.obj.get("metadata", {}).get("labels") or {}
        return matches_selector(sub.selector, labels)
    return True


_SET_REQ = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def matches_selector(selector: str, labels: dict[str, Any]) -> bool:
    """Kubernetes label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`."""
    for req in re.split(r",(?![^()]*\))", selector):
        req = req.strip()
        if not req:
            continue
        m = _SET_REQ.match(req)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if (op == "in") != (key in labels and labels[key] in values):
                return False
        elif "!=" in req:
            key, value = (p.strip() for p in req.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in req:
            key, value = (p.strip() for p in req.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif req not in labels:
            return False
    return True
