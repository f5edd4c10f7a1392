"""`rancherlab` command line: one module per subcommand, each with `register(subparsers)`.

Exit codes (documented in the README): 0 done, 1 anything else, 2 usage, 3 authentication or
permission, 4 not found, 5 TLS, 6 gave up connecting.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .._version import __version__

# Subcommand modules, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = ("demo", "simulate", "record", "serve", "import_har", "schema", "report", "check_client")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rancherlab",
        description="Explore, record and replay Rancher 2's WebSocket subscribe API.",
    )
    parser.add_argument("--version", action="version", version=f"rancherlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
