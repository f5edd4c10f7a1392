"""`rancherlab demo`: the showcase `make demo` runs, against the embedded simulator.

It captures one Norman project scope and Steve pods of the same cluster for a few seconds (long enough
for a Norman ping) into recordings, replays what it recorded, loads it into pandas, and prints in fixed
sections what a newcomer wants to see; then it writes the HTML report.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..protocol import Event, norman
from ..protocol.steve import Watch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="watch both subscribe APIs of the embedded simulator, record, replay and analyse")
    p.add_argument(
        "--seconds",
        type=float,
        default=norman.PING_INTERVAL + 1.5,
        help="how long to listen (default: long enough for one Norman ping)",
    )
    p.add_argument("--rate", type=float, default=20.0, help="simulated changes per second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--norman-ping",
        type=float,
        default=norman.PING_INTERVAL,
        metavar="S",
        help="the simulator's Norman ping interval (Rancher: 5 s)",
    )
    p.add_argument("--out", default="recordings", help="folder for the recordings and the report (default: recordings)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import rancherlab as rl

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"norman": out / "demo-norman.jsonl", "steve": out / "demo-steve.jsonl"}
    with rl.Simulator(args.seed, rate=args.rate, norman_ping=args.norman_ping) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = next(p for p in sim.world.projects(cluster))
        norman_scope, steve_scope, watch = f"project:{project}", f"steve:{cluster}", Watch("pod")
        credentials = rl.Credentials.bearer(sim.token)
        captures = {
            "norman": rl.capture(
                sim.url,
                norman_scope,
                types=["pod", "deployment"],
                credentials=credentials,
                record=paths["norman"],
                overwrite=True,
                duration=args.seconds,
                env={},
                cli_config=False,
            ),
            "steve": rl.capture(
                sim.url,
                steve_scope,
                watches=[watch],
                credentials=credentials,
                record=paths["steve"],
                overwrite=True,
                duration=args.seconds,
                env={},
                cli_config=False,
            ),
        }
        section("Endpoints and authentication")
        print(f"simulator     {sim.url}  (seed {args.seed}, {args.rate:g} changes/s)")
        for dialect, cap in captures.items():
            print(
                f"{dialect:13} {cap.stream.scope!s:28} {sim.url.replace('http', 'ws', 1)}{cap.stream.scope.subscribe_path}"
            )
        print(f"  Steve sends {watch.subscribe_message('<list revision>')}")
        print(f"credential    Authorization: Bearer {credentials.masked}")
        print(f"listening     {args.seconds:g} s ...", flush=True)
        for cap in captures.values():
            cap.wait()
    events = {dialect: list(cap.events) for dialect, cap in captures.items()}  # what was received

    section("Events by name and type")
    counts = Counter((e.dialect, e.kind, e.name, e.type or "-") for evs in events.values() for e in evs)
    print(f"{'api':7} {'kind':9} {'name':18} {'type':12} {'count':>5}")
    for (dialect, kind, name, typ), n in sorted(counts.items()):
        print(f"{dialect:7} {kind:9} {name:18} {typ:12} {n:5}")

    section("One pod change, both shapes")
    pair = _same_pod(events["norman"], events["steve"])
    if pair is None:
        print("(no pod changed on both sockets while listening; try --seconds 15)")
    else:
        side_by_side(*pair)

    section("Recorded, then replayed")
    for dialect, path in paths.items():
        replayed = list(rl.replay(path, speed=float("inf")))
        same = [e.raw for e in replayed] == [e.raw for e in events[dialect]]
        print(
            f"{path}  {path.stat().st_size:>8,} bytes  {len(replayed):4} events replayed, "
            f"{'identical' if same else 'DIFFERENT'} to what was received"
        )

    df = rl.load(list(paths.values()))
    section("The events as a DataFrame (rl.load)")
    with _wide():
        print(
            df[["recording", "seq", "kind", "name", "type", "id", "revision", "state"]].head(8).to_string(index=False)
        )
        print(f"... {len(df)} rows, columns: {', '.join(df.columns)}")

        section("State a client would hold (rl.state), a few rows")
        st = rl.state(df)
        print(st[["dialect", "type", "id", "state"]].head(8).to_string(index=False))
        print(f"... {len(st)} objects")

        section("What a change changes (rl.diffs)")
        d = rl.diffs(df)
        if len(d):
            interesting = d[d["path"].str.contains("state|replicas|scale", regex=True)]
            row = (interesting if len(interesting) else d).iloc[0]
            print(f"{row['type']} {row['id']} at seq {row['seq']}: {row['path']}: {row['old']!r} -> {row['new']!r}")
            print(f"... {len(d)} field changes in all; most changed paths:")
            print(d.groupby(["type", "path"], observed=True).size().sort_values(ascending=False).head(5).to_string())

        section("Event schema highlights (rl.schema)")
        catalog = rl.schema(df)
        for (api, typ), fields in catalog.groupby(["dialect", "type"], observed=True):
            top = fields[(fields["presence"] >= 100) & ~fields["path"].str.contains(r"\.|\[", regex=True)]
            print(
                f"{api} {typ}: {len(fields)} fields, {int(fields['conflict'].sum())} with conflicting types, "
                f"{int(fields['late'].sum())} appearing late; always there: {', '.join(top['path'].head(8))}"
            )

    report = rl.write_report(
        df, out / "demo-report.html", title="rancherlab demo", sources=[str(p) for p in paths.values()]
    )
    section("Report")
    print(f"wrote {report}  (open it in a browser)")
    return 0


def _same_pod(
    norman_events: Iterable[Event], steve_events: Iterable[Event]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The latest pod seen on both sockets: Norman ids are `ns:name`, Steve ids `ns/name`."""
    steve_pods = {e.id: e.data for e in steve_events if e.is_resource and e.type == "pod"}
    for event in reversed(list(norman_events)):
        if event.is_resource and event.type == "pod" and event.id:
            twin = steve_pods.get(event.id.replace(":", "/", 1))
            if twin is not None:
                return event.data, twin
    return None


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 74 - len(title)))


def _wide() -> Any:
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40)


def side_by_side(left: dict[str, Any], right: dict[str, Any], rows: int = 32) -> None:
    width = max(40, (shutil.get_terminal_size((160, 40)).columns - 3) // 2)
    a = ["Norman /v3 (project scope)", *json.dumps(left, indent=1, sort_keys=True).splitlines()]
    b = ["Steve /v1 (cluster)", *json.dumps(right, indent=1).splitlines()]
    for i in range(min(rows, max(len(a), len(b)))):
        la = a[i] if i < len(a) else ""
        lb = b[i] if i < len(b) else ""
        print(f"{la[:width]:<{width}} | {lb[:width]}")
    if max(len(a), len(b)) > rows:
        print(f"{'...':<{width}} | ...")
