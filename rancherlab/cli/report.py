"""`rancherlab report`: one self-contained HTML file with summary tables and plots of recordings."""

from __future__ import annotations

import argparse

from ..errors import EXIT_NOT_FOUND
from ._recordings import add_files_argument, load_recordings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report (tables and plots) of recordings",
        description="Read recordings and write one HTML file with summary tables and embedded plots.",
    )
    add_files_argument(p)
    p.add_argument("--out", metavar="F", default="report.html", help="the HTML file to write (default: report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import write_report

    loaded = load_recordings("report", args.files, strict=args.strict)
    if loaded is None:
        return EXIT_NOT_FOUND
    df, sources = loaded
    title = "rancherlab report: " + (sources[0] if len(sources) == 1 else f"{len(sources)} recordings")
    out = write_report(df, args.out, title=title, sources=sources)
    print(f"wrote {out}")
    return 0
