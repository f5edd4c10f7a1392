"""`rancherlab report`: one self-contained HTML file with summary tables and plots of recordings.

The recordings are streamed (read a chunk at a time), so memory does not grow with their size.
"""

from __future__ import annotations

import argparse

from ._recordings import add_files_argument, report_skipped


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report (tables and plots) of recordings",
        description="Read recordings (streamed) and write one HTML file with summary tables and embedded plots.",
    )
    add_files_argument(p)
    p.add_argument("--out", metavar="F", default="report.html", help="the HTML file to write (default: report.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import write_report
    from ..analysis._load import Skipped, recording_paths

    # A missing recording raises FileNotFoundError, damage under --strict a RecordingError: the command line's
    # one handler says so in one line. What tolerant reading skipped is said in one line too.
    skipped = Skipped()
    out = write_report(recording_paths(args.files), args.out, strict=args.strict, skipped=skipped)
    report_skipped("report", skipped)
    print(f"wrote {out}")
    return 0
