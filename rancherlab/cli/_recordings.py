"""What the commands that read recordings (`schema`, `report`) share: the FILE arguments and loading them."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def add_files_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="recordings or folders of recordings")


def load_recordings(command: str, files: list[str]) -> tuple[pd.DataFrame, list[str]] | None:
    """One frame of every recording named (files or folders) and the recordings it came from,
    or None after telling standard error which one is missing."""
    from ..analysis import load

    try:
        df = load(files)
    except FileNotFoundError as exc:
        print(f"rancherlab {command}: {exc}", file=sys.stderr)
        return None
    return df, [str(r) for r in df["recording"].cat.categories]
