"""`rancherlab simulate`: run the embedded Rancher stand-in until Ctrl-C."""

from __future__ import annotations

import argparse
import ssl
import threading

from ..errors import RancherlabError, TLSError, UsageError
from ..protocol import norman, steve


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="serve a simulated Rancher (Norman /v3 and Steve /v1 subscribe, REST)",
        description="Serve a simulated Rancher on loopback: both subscribe APIs, REST, and faults on demand.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--token", help="accept this token-xxxxx:secret (default: generate one and print it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the deterministic world")
    p.add_argument("--rate", type=float, default=5.0, help="world changes per second (0: none)")
    p.add_argument("--norman-ping", type=float, default=norman.PING_INTERVAL, metavar="S", help="Norman ping interval")
    p.add_argument("--steve-ping", type=float, default=steve.PING_INTERVAL, metavar="S", help="Steve ping interval")
    p.add_argument(
        "--steve-store",
        choices=("sql", "proxy"),
        help="sql: current Rancher, no replay; proxy: Rancher up to 2.11, replay and watch expiry (default: the "
        "--rancher-version's)",
    )
    p.add_argument(
        "--rancher-version",
        metavar="V",
        help="send what this Rancher sent: a release (v2.8.3) or a profile (2.5, 2.6, 2.7.0, 2.7-head, 2.7.2, 2.12; "
        "default 2.12)",
    )
    p.add_argument("--steve-retain", type=int, default=1000, metavar="N", help="events kept per type for resuming")
    p.add_argument(
        "--watch-timeout",
        type=float,
        metavar="S",
        help="end shared Norman watches (sockets close) and Steve proxy watches (resource.stop) after S",
    )
    p.add_argument(
        "--drop-every", type=float, metavar="S", help="close every socket without close frame (1006) every S"
    )
    p.add_argument("--stall-after", type=float, metavar="S", help="each socket goes silent S seconds after connecting")
    p.add_argument(
        "--count-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="Steve's count resource: merged updates at most every S (Rancher: 5 s)",
    )
    p.add_argument(
        "--forbid",
        action="append",
        default=[],
        metavar="TYPE",
        help="a type the caller may not watch (Norman: not among its schemas; Steve: PermissionDenied)",
    )
    p.add_argument("--certfile", help="serve TLS with this certificate (PEM)")
    p.add_argument("--keyfile", help="the certificate's private key (PEM)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..simulator import Simulator

    # Errors go to the command line's one handler, which writes them on stderr: stdout carries only what a
    # script reads (URL, token).
    if bool(args.certfile) != bool(args.keyfile):
        raise UsageError("--certfile and --keyfile go together")
    store = {"steve_store": args.steve_store} if args.steve_store else {}
    try:
        sim = Simulator(
            args.seed,
            rancher_version=args.rancher_version,
            token=args.token,
            certfile=args.certfile,
            keyfile=args.keyfile,
            host=args.host,
            port=args.port,
            rate=args.rate,
            norman_ping=args.norman_ping,
            steve_ping=args.steve_ping,
            **store,
            steve_retain=args.steve_retain,
            watch_timeout=args.watch_timeout,
            drop_every=args.drop_every,
            stall_after=args.stall_after,
            forbid=tuple(args.forbid),
            count_interval=args.count_interval,
        )
    except ssl.SSLError as exc:  # a certificate or key that is not PEM or does not match
        raise TLSError(f"cannot load --certfile/--keyfile: {exc}; give a PEM certificate and its own key") from None
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"cannot load --certfile/--keyfile: no such file: {exc.filename}") from None
    try:
        sim.start()
    except OSError as exc:  # the port is taken or the address cannot be bound
        sim.close()
        raise RancherlabError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; choose another --port (0: any free "
            "one) or --host"
        ) from None
    try:
        print(f"rancherlab simulator listening on {sim.url}", flush=True)
        print(
            f"  Norman: {sim.url.replace('http', 'ws', 1)}/v3/subscribe  (also /v3/clusters/<id>/subscribe, /v3/projects/<c:p>/subscribe)"
        )
        print(f"  Steve:  {sim.url.replace('http', 'ws', 1)}/v1/subscribe  (also /k8s/clusters/<id>/v1/subscribe)")
        if sim.generated_token:
            print(f"  token:  {sim.token}", flush=True)
        else:
            print("  token:  the one you gave with --token", flush=True)
        print("Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    finally:
        sim.close()
    return 0
