"""`rancherlab import-har FILE.har --out PATH`: browser captures of subscribe sockets as recordings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..har import import_har
from ..recording import RecordingError, RecordingExistsError
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
    try:
        written = import_har(
            args.har, args.out, redactor=Redactor(enabled=not args.no_redact), overwrite=args.overwrite
        )
    except FileNotFoundError:
        print(f"rancherlab import-har: no such file: {args.har}", file=sys.stderr)
        return 4
    except RecordingExistsError as exc:
        print(f"rancherlab import-har: {exc} (use --overwrite)", file=sys.stderr)
        return 1
    except RecordingError as exc:
        print(f"rancherlab import-har: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
