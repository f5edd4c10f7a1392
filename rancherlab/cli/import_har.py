"""`rancherlab import-har FILE.har --out PATH`: browser captures of subscribe sockets as recordings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..har import import_har
from ..redaction import Redactor


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import-har",
        help="turn the Rancher subscribe sockets of a browser HAR export into recordings",
        description="Each Rancher subscribe WebSocket in a Chrome DevTools or mitmproxy HAR becomes a recording. "
        "Secrets and the HAR's Authorization/Cookie values are redacted.",
    )
    parser.add_argument("har", metavar="FILE.har", type=Path, help="the HAR export")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="PATH",
        help="recording file for one socket; a folder (one file per socket) for several",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing recordings")
    parser.add_argument(
        "--no-redact",
        action="store_true",
        help="keep secret values (the HAR's credentials are still never copied as headers)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # errors (no such HAR, an existing recording, a HAR that is not one) go to the command line's one handler
    try:
        written = import_har(
            args.har, args.out, redactor=Redactor(enabled=not args.no_redact), overwrite=args.overwrite
        )
    except FileNotFoundError as exc:
        if Path(exc.filename or "") != args.har and exc.filename is not None:
            raise
        raise FileNotFoundError(f"no such file: {args.har}") from None
    for path in written:
        print(path)
    return 0
