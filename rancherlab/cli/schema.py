"""`rancherlab schema`: write the missing API reference of the event stream from recordings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._recordings import add_files_argument, read_frames


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
    from ..analysis import reference_markdown, typescript
    from ..analysis._reference import ReferenceBuilder

    # Streamed: batches of rows go through the builder and are dropped, so memory does not grow with the file.
    # A missing recording raises FileNotFoundError to the command line's one handler (exit 4).
    builder = ReferenceBuilder()
    sources: set[str] = set()
    for batch in read_frames("schema", args.files, strict=args.strict):
        builder.add(batch)
        sources.update(str(r) for r in batch["recording"].cat.categories)
    if args.format == "typescript":
        text = typescript(builder.catalog(), sources=sorted(sources))
    elif args.format == "json":
        text = json.dumps(builder.result(sources=sorted(sources)), indent=2, ensure_ascii=False, default=str) + "\n"
    else:
        text = reference_markdown(builder.result(sources=sorted(sources)))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
