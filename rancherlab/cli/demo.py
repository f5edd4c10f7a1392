"""`rancherlab demo`: the showcase `make demo` runs, against the embedded simulator.

It subscribes to one Norman project scope and to Steve pods of the same cluster for a few seconds
(long enough for a Norman ping), then prints in fixed sections what a newcomer wants to see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
from collections import Counter
from typing import Any, Iterable

from websockets.asyncio.client import connect

from ..protocol import Event, norman, parse_frame, parse_sent
from ..protocol.steve import Watch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="watch both subscribe APIs of the embedded simulator and show what arrives")
    p.add_argument("--seconds", type=float, default=norman.PING_INTERVAL + 1.5,
                   help="how long to listen (default: long enough for one Norman ping)")
    p.add_argument("--rate", type=float, default=20.0, help="simulated changes per second")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..simulator import Simulator

    with Simulator(args.seed, rate=args.rate) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]
        ws_base = sim.url.replace("http", "ws", 1)
        norman_url = f"{ws_base}/v3/projects/{project}/subscribe?resourceTypes=pod&resourceTypes=deployment"
        steve_url = f"{ws_base}/k8s/clusters/{cluster}/v1/subscribe"
        watch = Watch("pod")
        headers = {"Authorization": f"Bearer {sim.token}"}
        section("Endpoints and authentication")
        print(f"simulator     {sim.url}  (seed {args.seed}, {args.rate:g} changes/s)")
        print(f"Norman        {norman_url}")
        print(f"Steve         {steve_url}")
        print(f"  sends       {watch.subscribe_message()}")
        print(f"credential    Authorization: Bearer {mask(sim.token)}")
        print(f"listening     {args.seconds:g} s ...", flush=True)
        norman_events, steve_events = asyncio.run(_listen(norman_url, steve_url, watch, headers, args.seconds))

    section("Events by name and type")
    counts = Counter((e.dialect, e.name, e.type or "-") for e in [*norman_events, *steve_events] if e.kind == "frame")
    print(f"{'api':8} {'name':18} {'type':12} {'count':>5}")
    for (dialect, name, typ), n in sorted(counts.items()):
        print(f"{dialect:8} {name:18} {typ:12} {n:5}")

    section("One pod change, both shapes")
    pair = _same_pod(norman_events, steve_events)
    if pair is None:
        print("(no pod changed on both sockets while listening; try --seconds 15)")
    else:
        side_by_side(pair[0], pair[1])
    return 0


async def _listen(norman_url: str, steve_url: str, watch: Watch, headers: dict[str, str],
                  seconds: float) -> tuple[list[Event], list[Event]]:
    async def norman_side() -> list[Event]:
        async with connect(norman_url, additional_headers=headers, max_size=None) as ws:
            return [parse_frame(raw, "norman") async for raw in _until(ws, seconds)]

    async def steve_side() -> list[Event]:
        async with connect(steve_url, additional_headers=headers, max_size=None) as ws:
            message = watch.subscribe_message()
            await ws.send(message)
            return [parse_sent(message, "steve"), *[parse_frame(raw, "steve") async for raw in _until(ws, seconds)]]

    first, second = await asyncio.gather(norman_side(), steve_side())
    return first, second


async def _until(ws: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            yield await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            return


def _same_pod(norman_events: Iterable[Event], steve_events: Iterable[Event]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The latest pod seen on both sockets: Norman ids are `ns:name`, Steve ids `ns/name`."""
    steve_pods = {e.id: e.data for e in steve_events if e.is_resource and e.type == "pod"}
    for event in reversed(list(norman_events)):
        if event.is_resource and event.type == "pod" and event.id:
            twin = steve_pods.get(event.id.replace(":", "/", 1))
            if twin is not None:
                return event.data, twin
    return None


def mask(token: str) -> str:
    access, _, _secret = token.partition(":")
    return f"{access}:****"


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)))


def side_by_side(left: dict[str, Any], right: dict[str, Any], rows: int = 40) -> None:
    width = max(40, (shutil.get_terminal_size((160, 40)).columns - 3) // 2)
    a = ["Norman /v3 (project scope)", *json.dumps(left, indent=1, sort_keys=True).splitlines()]
    b = ["Steve /v1 (cluster)", *json.dumps(right, indent=1).splitlines()]
    for i in range(min(rows, max(len(a), len(b)))):
        la = a[i] if i < len(a) else ""
        lb = b[i] if i < len(b) else ""
        print(f"{la[:width]:<{width}} | {lb[:width]}")
    if max(len(a), len(b)) > rows:
        print(f"{'...':<{width}} | ...")
