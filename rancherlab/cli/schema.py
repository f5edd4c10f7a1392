"""`rancherlab schema`: write the missing API reference of the event stream from recordings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._recordings import add_files_argument, load_recordings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schema",
        help="generate a reference of the event stream (fields, types, examples) from recordings",
        description="Read recordings and write, per resource type, its fields with their JSON types, "
        "presence, examples, the events that carry it and how often each field changes.",
    )
    add_files_argument(p)
    p.add_argument(
        "--format",
        choices=("md", "json", "typescript"),
        default="md",
        help="Markdown, JSON with a JSON Schema per type, or TypeScript declarations of the events (default: md)",
    )
    p.add_argument("--out", metavar="F", help="write here instead of standard output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import reference, reference_markdown, schema, typescript

    df, sources = load_recordings(args.files)
    if args.format == "typescript":
        text = typescript(schema(df), sources=sources)
    elif args.format == "json":
        text = json.dumps(reference(df, sources=sources), indent=2, ensure_ascii=False, default=str) + "\n"
    else:
        text = reference_markdown(df, sources=sources)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
