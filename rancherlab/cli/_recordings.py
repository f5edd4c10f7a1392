"""What the commands that read recordings (`schema`, `report`) share: the FILE arguments and loading them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def add_files_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="recordings or folders of recordings")


def load_recordings(files: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """One frame of every recording named (files or folders) and the recordings it came from.

    Raises `FileNotFoundError` for a missing one and `RecordingError` for a damaged one; the command line's
    one handler turns them into a line on standard error and an exit code (4 and 1)."""
    from ..analysis import load

    df = load(files)
    return df, [str(r) for r in df["recording"].cat.categories]
