"""`rancherlab report`: one self-contained HTML file with summary tables and plots of recordings.

The recordings are streamed (read a chunk at a time), so memory does not grow with their size.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ._recordings import add_files_argument


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
    from ..analysis._load import recording_paths
    from ..recording import RecordingWarning

    # A missing recording raises FileNotFoundError, damage under --strict a RecordingError: the command line's
    # one handler says so in one line. Tolerant reading warns once per recording read; said here in one line each.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = write_report(recording_paths(args.files), args.out, strict=args.strict)
    said: set[str] = set()
    for w in caught:
        if not issubclass(w.category, RecordingWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in said:  # the state plot reads a recording a second time
            said.add(str(w.message))
            print(f"rancherlab report: {w.message} (--strict fails instead)", file=sys.stderr)
    print(f"wrote {out}")
    return 0
