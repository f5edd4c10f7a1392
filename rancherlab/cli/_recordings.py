"""What the commands that read recordings (`schema`, `report`) share: the FILE arguments and reading them.

Reading is tolerant by default: what a crash or a cut copy leaves (a cut last line or gzip stream, garbage
lines, over-long lines, empty files, files of a newer format version) is skipped, and one line on standard
error says how much and where the first problem was. `--strict` fails at the first damage instead. A missing
recording (`FileNotFoundError`, exit 4), or damage under `--strict` or nothing readable at all (`RecordingError`,
exit 1), is raised to the command line's one handler, which says so in one line on standard error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis._load import Skipped

STRICT_HELP = (
    "fail at the first damaged line or file (default: skip what a crash or a cut copy left, "
    "and say on standard error what was skipped)"
)


def add_files_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="recordings or folders of recordings")
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)


def load_recordings(command: str, files: list[str], *, strict: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One frame of every recording named (files or folders) and the recordings it came from.

    Damage: see the module docstring."""
    from ..analysis._frame import concat_frames
    from ..analysis._load import BATCH_ROWS

    df = concat_frames(list(read_frames(command, files, strict=strict, batch_rows=BATCH_ROWS)))
    return df, [str(r) for r in df["recording"].cat.categories] if "recording" in df else []


def read_frames(
    command: str, files: list[str], *, strict: bool = False, batch_rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """The recordings named, streamed as frames of a bounded number of rows (`analysis.iter_frames`).

    Tolerant unless `strict`; at the end, one line on standard error says what was skipped."""
    from ..analysis._load import STREAM_ROWS, Skipped, iter_frames

    skipped = Skipped()
    yield from iter_frames(files, strict=strict, skipped=skipped, progress=False, batch_rows=batch_rows or STREAM_ROWS)
    report_skipped(command, skipped)


def report_skipped(command: str, skipped: Skipped) -> None:
    """One line on standard error with the counts of what tolerant reading skipped (nothing when all was read)."""
    if skipped:
        print(f"rancherlab {command}: {skipped.message()} (--strict fails instead)", file=sys.stderr)
