"""`rancherlab serve`: serve a recording as the Rancher it was recorded from, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import threading

from ..protocol import norman, steve

TOKEN_ENV = "RANCHERLAB_SERVE_TOKEN"


def _speed(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("speed must be a positive number (1 = as recorded, 10 = ten times faster)")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a recording to any websocket client, browsers included",
        description="Serve a recording at the endpoint it was recorded from, as that Rancher would: the frames byte "
        "for byte at the recorded pace, Steve watches answered, REST lists from the replayed state, and a "
        "page at / that shows what a browser receives.",
    )
    p.add_argument("file", metavar="FILE", help="a recording (.jsonl or .jsonl.gz), or a folder of them")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X", help="replay X times faster (default: 1)")
    p.add_argument("--loop", action="store_true", help="start over at the end (default: stay open with pings)")
    p.add_argument(
        "--token",
        help="accept only this token-xxxxx:secret, as Rancher would (Bearer, Basic or R_SESS); "
        f"also read from ${TOKEN_ENV}. Default: any credential, or none",
    )
    p.add_argument(
        "--reproduce-drops",
        action="store_true",
        help="close the socket without close frame (1006) where the recording was dropped",
    )
    p.add_argument("--norman-ping", type=float, default=norman.PING_INTERVAL, metavar="S", help="Norman ping interval")
    p.add_argument("--steve-ping", type=float, default=steve.PING_INTERVAL, metavar="S", help="Steve ping interval")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..replayserver import ReplayServer

    token = args.token or os.environ.get(TOKEN_ENV) or None
    # a missing or damaged recording, a taken port: the command line's one handler says it on stderr
    server = ReplayServer(
        args.file,
        speed=args.speed,
        loop=args.loop,
        token=token,
        reproduce_drops=args.reproduce_drops,
        host=args.host,
        port=args.port,
        norman_ping=args.norman_ping,
        steve_ping=args.steve_ping,
    ).start()
    try:
        script = server.script
        print(
            f"rancherlab replay of {server.path.name} ({script.dialect} {script.header.scope}) on {server.url}",
            flush=True,
        )
        print(f"  subscribe: {server.endpoint_url}", flush=True)
        if token is None:
            print(
                "  auth:      none configured: any credential, or none, is accepted (--token to require one)",
                flush=True,
            )
        else:
            print("  auth:      the token you gave (Bearer, Basic or R_SESS cookie), as Rancher checks it", flush=True)
        page = f"{server.url}/" + ("?token=<your token>" if token is not None else "")
        print(
            f"  page:      {page}  (speed {args.speed:g}{', looping' if args.loop else ''}). Ctrl-C to stop.",
            flush=True,
        )
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
