"""`rancherlab` command line: one module per subcommand, each with `register(subparsers)`.

Commands raise; `main` turns every error into one line on standard error and an exit code, through the one
table below, so the same condition exits with the same code in every command (documented in the README):
0 done, 1 anything else, 2 usage, 3 authentication or permission, 4 not found, 5 TLS, 6 gave up connecting
7 a client failed a check (check-client).
"""

from __future__ import annotations

import argparse
import importlib
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Final, NoReturn

from .._version import __version__
from ..errors import (
    EXIT_AUTH,
    EXIT_GAVE_UP,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_OTHER,
    EXIT_TLS,
    EXIT_USAGE,
    AuthenticationError,
    ConnectGaveUpError,
    NotFoundError,
    PermissionDeniedError,
    TLSError,
    UsageError,
)

# Subcommand modules, in the order `--help` lists them.
COMMANDS: tuple[str, ...] = ("demo", "simulate", "record", "serve", "import_har", "schema", "report", "check_client")

# Set to 1 to get the traceback of an unexpected error instead of its one-line summary.
DEBUG_ENV: Final = "RANCHERLAB_DEBUG"

# THE mapping from error to exit code: the first class the error is an instance of wins.
EXIT_CODES: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (UsageError, EXIT_USAGE),
    (FileExistsError, EXIT_USAGE),  # an output that exists (RecordingExistsError too): --overwrite is the fix
    (AuthenticationError, EXIT_AUTH),
    (PermissionDeniedError, EXIT_AUTH),
    (PermissionError, EXIT_AUTH),  # the file system's "permission denied"
    (NotFoundError, EXIT_NOT_FOUND),
    (FileNotFoundError, EXIT_NOT_FOUND),
    (TLSError, EXIT_TLS),
    (ssl.SSLError, EXIT_TLS),
    (ConnectGaveUpError, EXIT_GAVE_UP),
)


def exit_code(error: BaseException) -> int:
    """The exit code of the command line for `error` (1 for anything the table does not name)."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return EXIT_OTHER


def error_line(error: BaseException) -> str:
    """What the command line says about `error`: one line, with what to do where rancherlab knows it.

    rancherlab's own errors already say what to do; an unexpected error shows only its type, since its
    message was not written to be safe to show (it could hold anything a library put there).
    """
    from ..errors import RancherlabError

    if isinstance(error, OSError) and not isinstance(error, RancherlabError) and error.filename is not None:
        text = f"{error.strerror or error}: {error.filename}"
    elif isinstance(error, (RancherlabError, OSError)):
        text = str(error) or type(error).__name__
    else:
        text = (
            f"unexpected {type(error).__name__}; this is a bug in rancherlab, please report it (set {DEBUG_ENV}=1 "
            "to see where it happened)"
        )
    if isinstance(error, FileExistsError) and "--overwrite" not in text:
        text += "; pass --overwrite to replace it"
    return " ".join(text.split())  # one line, whatever the message held


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, like every other error (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {' '.join(message.split())}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rancherlab",
        description="Explore, record and replay Rancher 2's WebSocket subscribe API.",
        epilog="Exit codes: 0 done, 1 other error, 2 usage, 3 authentication or permission, 4 not found, 5 TLS, "
        "6 gave up connecting.",
    )
    parser.add_argument("--version", action="version", version=f"rancherlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors from argparse: its own message and exit 2
    command = args.command
    try:
        return int(args.func(args) or EXIT_OK)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get(DEBUG_ENV) and exit_code(exc) == EXIT_OTHER:
            raise
        print(f"rancherlab {command}: {error_line(exc)}", file=sys.stderr, flush=True)
        return exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
