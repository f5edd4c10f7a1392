"""Helpers shared by the live-stream tests: run a stream against the simulator, rebuild state, read the truth.

Two truths: what REST lists (`truth`, the same formatting as the stream, so whole objects compare) and the
simulator's world itself (`ground_ids`, independent of REST, so a bug shared by REST and the stream
cannot hide: Norman's resync re-lists from REST, and comparing its result with REST alone is circular).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rancherlab.credentials import Credentials, resolve_server
from rancherlab.protocol.event import Event
from rancherlab.protocol.objects import PROJECT_ANNOTATION, ObjectMirror
from rancherlab.protocol.steve import Watch
from rancherlab.redaction import Redactor
from rancherlab.rest import RestClient
from rancherlab.scope import Scope
from rancherlab.simulator import Simulator
from rancherlab.stream import Stream, StreamOptions

SECRET = "Sup3rS3cretXYZ"
TOKEN = f"token-zzzzz:{SECRET}"

# Every interval shortened so a test takes seconds.
FAST = StreamOptions(
    liveness=1.5,
    backoff_initial=0.05,
    backoff_max=0.3,
    too_old_backoff=0.02,
    open_timeout=3,
    rest_timeout=5,
    quick_close=1.0,
    ws_ping_interval=None,
)
SIM_FAST: dict[str, Any] = {"norman_ping": 0.2, "steve_ping": 0.2}

T = TypeVar("T")


def collect(stream: Stream, until: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
    """Run `stream` on a fresh loop until `until(events)` holds (or the time is up); exceptions propagate."""

    async def run() -> list[Event]:
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    event = await asyncio.wait_for(stream.__anext__(), max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    break
                events.append(event)
                if until(events):
                    break
        finally:
            await stream.aclose()
        return events

    return asyncio.run(run())


def consume_during(
    stream: Stream, scenario: Callable[[list[Event]], Awaitable[T]], *, drain: bool = True
) -> tuple[list[Event], T]:
    """Run `stream` on a fresh loop, appending its events to a list, while `scenario(events)` runs; then close it.

    With `drain=False` the consumer is cancelled right after the close instead of taking what is still queued.
    """

    async def run() -> tuple[list[Event], T]:
        events: list[Event] = []

        async def consume() -> None:
            async for event in stream:
                events.append(event)

        task = asyncio.get_running_loop().create_task(consume())
        result = await scenario(events)
        await stream.aclose()
        if not drain:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return events, result

    return asyncio.run(run())


def stream_for(sim: Simulator, scope: str, *, options: StreamOptions = FAST, **kwargs: Any) -> Stream:
    kwargs.setdefault("credentials", sim.token)
    return Stream(sim.url, scope, options=options, env={}, cli_config=False, **kwargs)


def rebuild(events: list[Event]) -> dict[tuple[str, str], Any]:
    """The state a consumer gets by applying the stream with the protocol's object rules (upsert, remove)."""
    mirror = ObjectMirror(events[0].dialect if events else "norman")
    for e in events:
        mirror.apply(e)
    return mirror.objects


def comparable(state: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    """Objects without Steve's table cells: their Age column is computed when the object is formatted."""
    out = {}
    for key, obj in state.items():
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if isinstance(meta, dict) and "fields" in meta:
            obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "fields"}}
        out[key] = obj
    return out


def truth(
    sim: Simulator,
    scope: str,
    *,
    types: tuple[str, ...] = (),
    watches: tuple[Watch, ...] = (),
    redactor: Redactor | None = None,
) -> dict[tuple[str, str], Any]:
    """What the server's REST lists now (the simulator formats its world for REST and streams alike).

    Give the stream's `redactor` to compare with what the stream emits: its events are redacted, with its key.
    """
    server = resolve_server(sim.url, Credentials.bearer(sim.token), env={}, cli_config=False)
    sc = Scope.parse(scope)

    async def run() -> dict[tuple[str, str], Any]:
        out: dict[tuple[str, str], Any] = {}
        async with RestClient(server) as rest:
            if sc.dialect == "steve":
                listings = [await rest.list_watch(sc, w) for w in (*watches, *(Watch(t) for t in types))]
            else:
                listings = [await rest.list_objects(sc, t) for t in (types or tuple(await rest.types(sc)))]
        for listing in listings:
            for obj in listing.items:
                out[(obj["type"], obj["id"])] = obj if redactor is None else redactor.redact_value(obj)
        return out

    return asyncio.run(run())


# The simulator's world in each dialect's terms, written here from Rancher's conventions rather than taken
# from the simulator's formatter: the point is to check the formatter and the stream against the world.
_NORMAN_GLOBAL = {
    "management.cattle.io.cluster": "cluster",
    "management.cattle.io.project": "project",
    "management.cattle.io.node": "node",
    "management.cattle.io.user": "user",
    "management.cattle.io.token": "token",
}
_NORMAN_PROJECT = {
    "pod": "pod",
    "apps.deployment": "deployment",
    "apps.replicaset": "replicaSet",
    "service": "service",
    "configmap": "configMap",
    "secret": "namespacedSecret",
}
_NORMAN_SECRET = {
    "kubernetes.io/basic-auth": "namespacedBasicAuth",
    "kubernetes.io/tls": "namespacedCertificate",
    "kubernetes.io/dockerconfigjson": "namespacedDockerCredential",
    "kubernetes.io/ssh-auth": "namespacedSshAuth",
}


def _norman_id(kind: str, namespace: str | None, name: str) -> str:
    """Norman ids: workloads `deployment:ns:name`, namespaced objects `ns:name`, the rest `name`."""
    if kind in ("apps.deployment", "apps.replicaset"):
        return f"{kind.split('.')[1]}:{namespace}:{name}"
    return f"{namespace}:{name}" if namespace else name


def ground_ids(sim: Simulator, scope: str, *, watches: tuple[Watch, ...] = ()) -> dict[str, set[str]]:
    """The ids per stream type that `scope` (Norman: every type it offers; Steve: `watches`) holds in the world."""
    world = sim.ground_truth()
    sc = Scope.parse(scope)
    out: dict[str, set[str]] = {}
    for (kind, cluster, namespace, name), obj in world.items():
        if sc.dialect == "steve":
            if cluster != (sc.cluster or "local"):
                continue
            for w in watches:
                if w.type == kind and w.namespace in (None, namespace):
                    out.setdefault(kind, set()).add(f"{namespace}/{name}" if namespace else name)
            continue
        if sc.kind == "global":
            typ = _NORMAN_GLOBAL.get(kind)
        elif sc.kind == "cluster":
            typ = "namespace" if kind == "namespace" and cluster == sc.cluster else None
        else:
            ns = world.get(("namespace", cluster, None, namespace or ""))
            project = ((ns or {}).get("metadata", {}).get("annotations") or {}).get(PROJECT_ANNOTATION)
            typ = _NORMAN_PROJECT.get(kind) if project == sc.project_id and namespace else None
            if kind == "secret" and typ:
                typ = _NORMAN_SECRET.get(obj.get("type", ""), typ)
        if typ is not None:
            out.setdefault(typ, set()).add(_norman_id(kind, namespace, name))
    return out


def ids_by_type(state: dict[tuple[str, str], Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for typ, oid in state:
        out.setdefault(typ, set()).add(oid)
    return out


def _churner(sim: Simulator, per_tick: int, every: float) -> tuple[threading.Thread, threading.Event]:
    """A started thread that changes the world `per_tick` steps every `every` seconds until its event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sim.step(per_tick)
            stop.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread, stop


@contextmanager
def churning(sim: Simulator, *, per_tick: int = 3, every: float = 0.05) -> Iterator[threading.Event]:
    """Change the world from a thread while the block runs (the simulator runs with rate=0)."""
    thread, stop = _churner(sim, per_tick, every)
    try:
        yield stop
    finally:
        stop.set()
        thread.join(5)


@contextlib.asynccontextmanager
async def achurning(sim: Simulator, *, per_tick: int = 3, every: float = 0.05) -> AsyncIterator[threading.Event]:
    """`churning` for a block on an event loop: the thread is joined without blocking the loop under test."""
    thread, stop = _churner(sim, per_tick, every)
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 5)


def markers(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.kind == "marker" and e.name == name]


def busiest_project(sim: Simulator, cluster: str = "local") -> str:
    counts: dict[str, int] = {}
    for res in sim.world.resources(None, cluster):
        pid = sim.world.project_of(res)
        if pid and res.kind in ("pod", "apps.deployment"):
            counts[pid] = counts.get(pid, 0) + 1
    return max(counts, key=lambda p: counts[p])
