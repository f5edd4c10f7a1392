"""`rancherlab check-client`: throw Rancher's real failures at your subscribe client and print its report card."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-client",
        help="run Rancher's real failures against your subscribe client and report what it survived",
        description="Start a Rancher on loopback (the simulator, or --recording served as it was recorded) behind a "
        "fault proxy; start your client with RANCHER_URL, RANCHER_TOKEN_KEY and RANCHERLAB_STATE_FILE set (or wait "
        "for one); drop, stall and restart it, expire and refuse its Steve watches, burst; then print which of "
        "Rancher's behaviours it handled. Exit 0: every check passed; 7: a check failed; 2: usage.",
    )
    p.add_argument(
        "--cmd", metavar="CMD", help='the client to start, e.g. "node my-client.mjs" (default: wait for one)'
    )
    p.add_argument("--recording", metavar="FILE", help="serve this recording (replay server) instead of the simulator")
    p.add_argument("--json", metavar="FILE", help="also write the report card as JSON here")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulator's world")
    p.add_argument(
        "--rancher-version",
        metavar="V",
        help="send what this Rancher sent: a release (v2.8.3) or a profile (2.5, 2.6, 2.7.0, 2.7-head, 2.7.2, 2.12; "
        "default 2.12)",
    )
    t = p.add_argument_group("schedule (seconds; the defaults take about two minutes)")
    t.add_argument("--connect-timeout", type=float, metavar="S", help="for the client's first socket (default 60)")
    t.add_argument("--reconnect-timeout", type=float, metavar="S", help="for a new socket after a drop (default 60)")
    t.add_argument("--settle", type=float, metavar="S", help="before the first fault (default 3)")
    t.add_argument("--window", type=float, metavar="S", help="given to the client after each fault (default 6)")
    t.add_argument("--stall", type=float, metavar="S", help="how long sockets stay silent (default 40)")
    t.add_argument("--down", type=float, metavar="S", help="the restart's outage (default 6)")
    t.add_argument("--burst", type=int, metavar="N", help="world changes at once (default 2000)")
    t.add_argument("--rate", type=float, metavar="N", help="world changes per second (default 5)")
    t.add_argument("--final", type=float, metavar="S", help="with the world still, before comparing state (default 3)")
    t.add_argument(
        "--ping", type=float, metavar="S", help="the server's ping interval (default: Rancher's, 5 s / 30 s)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..clientcheck import CheckSchedule, ClientCheck

    tuning = {
        k: getattr(args, k)
        for k in (
            "connect_timeout",
            "reconnect_timeout",
            "settle",
            "window",
            "stall",
            "down",
            "burst",
            "rate",
            "final",
            "ping",
        )
        if getattr(args, k) is not None
    }
    if args.cmd is None and "connect_timeout" not in tuning:
        tuning["connect_timeout"] = 600.0  # a person starts the client by hand

    def ready(url: str, token: str) -> None:
        if args.cmd is None:
            # a local, generated credential for this check only: printed so a hand-started client can use it
            print(f"RANCHER_URL={url}\nRANCHER_TOKEN_KEY={token}", flush=True)
            print("waiting for a client to connect…", file=sys.stderr, flush=True)

    # usage errors (a bad schedule, a missing recording) go to the command line's one handler: exit 2
    check = ClientCheck(
        cmd=args.cmd,
        recording=args.recording,
        schedule=CheckSchedule(**tuning),
        seed=args.seed,
        host=args.host,
        port=args.port,
        rancher_version=args.rancher_version,
        on_ready=ready,
    )
    report = check.run()
    print(report.text(), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    return report.exit_code
