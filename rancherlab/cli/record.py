"""`rancherlab record`: record a live subscribe stream to a file until a count, a duration, Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType

from ..credentials import Credentials, InsecureTLSWarning, read_token_file, resolve_server
from ..errors import EXIT_OK, CredentialsError, UsageError
from ..protocol.steve import Watch
from ..scope import SCOPE_HELP, resolve_scope

_POLL = 0.2  # seconds between checks of the capture while waiting for it to end


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "record",
        help="record a live Rancher subscribe stream to a file",
        description="Record a live Rancher subscribe stream (Norman /v3 or Steve /v1) to a JSONL recording. Stops "
        "after --count resource frames or --duration seconds, whichever comes first, or at Ctrl-C or SIGTERM "
        "(both end the recording cleanly, with its summary, and exit 0).",
        epilog="Credentials: arguments, else RANCHER_URL with RANCHER_TOKEN_KEY (or RANCHER_ACCESS_KEY and "
        "RANCHER_SECRET_KEY), else the Rancher CLI's cli2.json; a prompt when none and stdin is a terminal. "
        "Exit codes: 0 done, 1 other error, 2 usage, 3 authentication or permission, 4 not found, 5 TLS, "
        "6 gave up connecting.",
    )
    p.add_argument(
        "--url",
        help="Rancher server URL (https://host[:port], /v3 or /v1 optional, or a whole subscribe "
        "URL copied from DevTools); default: from the environment or cli2.json",
    )
    p.add_argument("--scope", help=SCOPE_HELP)
    p.add_argument(
        "--type",
        dest="types",
        action="append",
        default=[],
        metavar="TYPE",
        help="resource type, repeatable (Norman: schema id like 'pod'; Steve: required, e.g. 'pod', 'apps.deployment')",
    )
    steve = p.add_argument_group("Steve watch options (apply to every --type)")
    steve.add_argument("--namespace", help="only this namespace")
    steve.add_argument("--id", help="one object: 'name' or 'namespace/name'")
    steve.add_argument("--selector", help="label selector, e.g. app=nginx")
    steve.add_argument("--mode", choices=("changes",), help="'changes': notifications only (Rancher 2.12+)")
    steve.add_argument("--debounce-ms", type=int, metavar="MS", help="with --mode changes: debounce window")
    creds = p.add_argument_group("credentials")
    creds.add_argument(
        "--token-file", metavar="FILE", help="read the API token (token-xxxxx:secret) from FILE, or from stdin with '-'"
    )
    creds.add_argument(
        "--token",
        help="the API token itself; other users can see it in the process list and your "
        "shell history, so prefer --token-file or RANCHER_TOKEN_KEY",
    )
    creds.add_argument("--access-key", metavar="KEY", help="API access key (token-xxxxx); with --secret-key")
    creds.add_argument("--secret-key", metavar="KEY", help="API secret key; visible to other users like --token")
    creds.add_argument("--cookie", metavar="VALUE", help="a browser session's R_SESS cookie value")
    creds.add_argument(
        "--config",
        metavar="FILE",
        help="the Rancher CLI config to read (default: $RANCHER_CONFIG_DIR/cli2.json or ~/.rancher/cli2.json)",
    )
    tls = p.add_mutually_exclusive_group()
    tls.add_argument(
        "--cacert", metavar="FILE", help="CA certificate (PEM file, or the PEM text) that signed Rancher's certificate"
    )
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates (last resort: anyone on the path can read your token)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="recording to write (.jsonl or .jsonl.gz)")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--count", type=int, metavar="N", help="stop after N received resource.* frames")
    p.add_argument("--no-snapshot", action="store_true", help="do not start with the current objects from REST")
    p.add_argument(
        "--give-up-after",
        type=int,
        default=10,
        metavar="N",
        help="exit (code 6) after N failed connection attempts in a row (default: 10; 0: never)",
    )
    p.add_argument("--max-frame-bytes", type=int, metavar="N", help="largest frame accepted")
    p.add_argument(
        "--backlog-mb",
        type=float,
        metavar="MB",
        help="memory for frames received but not yet written (default: 64); past it they wait on disk, encrypted",
    )
    p.add_argument(
        "--liveness",
        type=float,
        metavar="S",
        help="seconds without a frame before the socket counts as dead (default: 15 Norman, 35 Steve)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def _credentials(args: argparse.Namespace) -> Credentials | None:
    given = [
        name
        for name, value in (
            ("--token-file", args.token_file),
            ("--token", args.token),
            ("--access-key/--secret-key", args.access_key or args.secret_key),
            ("--cookie", args.cookie),
        )
        if value
    ]
    if len(given) > 1:
        raise CredentialsError(f"give one credential, not {' and '.join(given)}")
    if args.token_file:
        return Credentials.bearer(read_token_file(args.token_file))
    if args.token:
        return Credentials.bearer(args.token)
    if args.access_key or args.secret_key:
        if not (args.access_key and args.secret_key):
            raise CredentialsError("--access-key and --secret-key go together")
        return Credentials.api_key(args.access_key, args.secret_key)
    if args.cookie:
        return Credentials.cookie(args.cookie)
    return None


def _watches(args: argparse.Namespace, steve: bool) -> list[Watch]:
    extras = {
        "namespace": args.namespace,
        "id": args.id,
        "selector": args.selector,
        "mode": args.mode,
        "debounce_ms": args.debounce_ms,
    }
    if not steve:
        used = [f"--{k.replace('_', '-')}" for k, v in extras.items() if v is not None]
        if used:
            raise UsageError(f"{', '.join(used)} only apply to Steve scopes (steve, steve:<clusterId>)")
        return []
    if not args.types:
        raise UsageError("a Steve scope needs at least one --type (e.g. --type pod --type apps.deployment)")
    try:
        return [Watch(t, **extras) for t in args.types]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


class _Terminated(Exception):
    """SIGTERM arrived: end the recording as Ctrl-C does."""


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """While recording, SIGTERM (a service manager, `kill`, `timeout`) stops like Ctrl-C instead of killing.

    The handler raises once in the main thread, where the wait loop runs; a second SIGTERM while the
    recording is being closed is ignored, so it cannot cut the close short (SIGKILL still can).
    """
    if not hasattr(signal, "SIGTERM"):  # pragma: no cover - every platform rancherlab runs on has it
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    from ..capture import Capture
    from ..stream import Stream, StreamOptions

    # Errors raised here and by the capture reach the command line's one error handler (rancherlab.cli.main).
    if args.count is not None and args.count <= 0:
        raise UsageError("--count must be a positive number of frames")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    server = resolve_server(
        args.url, _credentials(args), cacert=args.cacert, insecure=args.insecure or None, cli_config=args.config
    )
    if server.credentials is None:
        if not sys.stdin.isatty():
            raise CredentialsError(
                f"no credential for {server.base}: pass --token-file, set RANCHER_TOKEN_KEY, or "
                "run in a terminal to be asked"
            )
        token = getpass.getpass(f"API token for {server.base} (token-xxxxx:secret, input hidden): ")
        server = replace(server, credentials=Credentials.bearer(token))
    scope = resolve_scope(server.url, args.scope)
    watches = _watches(args, scope.dialect == "steve")
    options = StreamOptions(snapshot=not args.no_snapshot, give_up_after=args.give_up_after or None)
    if args.max_frame_bytes:
        options = replace(options, max_frame_bytes=args.max_frame_bytes)
    if args.backlog_mb is not None:
        if not args.backlog_mb > 0:
            raise UsageError("--backlog-mb must be a positive number of megabytes")
        options = replace(options, backlog_bytes=int(args.backlog_mb * 1024 * 1024))
    if args.liveness is not None:
        if not args.liveness > 0:
            raise UsageError("--liveness must be a positive number of seconds")
        options = replace(options, liveness=args.liveness)
    stream = Stream(scope=scope, types=() if watches else args.types, watches=watches, server=server, options=options)
    if server.tls.insecure and server.url.secure:
        print(
            "WARNING: TLS verification is OFF (--insecure): the server is not authenticated and anyone on the "
            "network path can read your token.",
            file=sys.stderr,
            flush=True,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureTLSWarning)  # said on stderr just above
        stream.prepare_tls()
    cap = Capture(
        stream,
        record=args.out,
        max_events=1000,
        count=args.count,
        duration=args.duration,
        overwrite=args.overwrite,
        on_event=None,
    )

    _say(args, f"recording {stream.scope} from {server.base} ({server.source}) to {args.out}; Ctrl-C to stop")
    started = time.monotonic()
    with _sigterm_stops():
        try:
            while not cap.wait(_POLL):
                pass
        except (KeyboardInterrupt, _Terminated):
            cap.stop()
    s = cap.stats
    _say(
        args,
        f"recorded {s.recorded} events ({s.resource_frames} resource frames, {s.connections} connections, "
        f"{s.gap_seconds:g} s disconnected) in {time.monotonic() - started:.1f} s to {args.out}",
    )
    return EXIT_OK
