"""Recordings on disk → one event frame (several files or a folder → one frame with a `recording` column)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from ..protocol.event import Event
from .frame import add_event, build, empty_columns

# Above this many bytes in total, `progress=None` shows a bar.
PROGRESS_BYTES: Final = 50 * 1024 * 1024
RECORDING_SUFFIXES: Final = (".jsonl", ".jsonl.gz", ".ndjson")
_TICK: Final = 2000  # events between progress updates

PathLike = str | os.PathLike[str]


def recording_paths(path_or_paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files to load, in order: a folder gives its recordings sorted by name."""
    items = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(RECORDING_SUFFIXES))
            if not found:
                raise FileNotFoundError(f"{p} has no recordings (files ending in {', '.join(RECORDING_SUFFIXES)})")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such recording: {p}")
    return out


def _events(path: Path) -> Iterator[Event]:
    try:
        from ..recording import read_recording  # type: ignore[import-not-found]
    except ImportError:  # the recording module has not landed yet: read its line shape directly
        yield from _read_lines(path)
        return
    yield from read_recording(path)


def _read_lines(path: Path) -> Iterator[Event]:
    """Interim reader: a JSONL file whose first line is a header object (`dialect`, ...) and whose other lines
    are Event fields (`seq`, `conn`, `t`, `ts` ISO or epoch seconds, `kind`, `name`, `raw`, `info`, ...).
    Frames are re-parsed from `raw`, so they come out exactly as the live client made them."""
    import gzip
    from datetime import datetime, timezone

    import orjson

    from ..protocol.frames import parse_frame, parse_sent

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        header: dict[str, Any] = {}
        for n, line in enumerate(fh):
            if not line.strip():
                continue
            doc = orjson.loads(line)
            if n == 0 and "kind" not in doc:
                header = doc
                continue
            dialect = doc.get("dialect") or header.get("dialect") or "norman"
            ts = doc.get("ts")
            when = (datetime.fromtimestamp(ts, timezone.utc) if isinstance(ts, (int, float))
                    else datetime.fromisoformat(ts) if isinstance(ts, str) else None)
            kind, raw = doc.get("kind", "frame"), doc.get("raw")
            if kind == "frame" and isinstance(raw, str):
                e = parse_frame(raw, dialect)
            elif kind == "sent" and isinstance(raw, str):
                e = parse_sent(raw, dialect)
            else:
                data = doc.get("data")
                if data is None and isinstance(raw, str):
                    data = orjson.loads(raw)
                e = Event(0, 0, 0.0, None, dialect, kind, doc.get("name", ""), type=doc.get("type"), id=doc.get("id"),
                          revision=doc.get("revision"), raw=raw, data=data, watch=doc.get("watch"), info=doc.get("info") or {})
            yield e.stamped(seq=int(doc.get("seq", n)), conn=int(doc.get("conn", 0)), t=float(doc.get("t", 0.0)), ts=when)


def load(path_or_paths: PathLike | Iterable[PathLike], *, pings: bool = False,
         progress: bool | None = None) -> pd.DataFrame:
    """Load one or more recordings (files or folders) as one event frame; see `frame` for the columns.

    Adds `recording` (the file name, categorical) so rows from several files stay apart; `seq` restarts in
    every recording. Pings are dropped unless `pings=True`. `progress=None` shows a tqdm bar when the input
    is larger than 50 MB; True / False force it.
    """
    paths = recording_paths(path_or_paths)
    sizes = [p.stat().st_size for p in paths]
    show = sum(sizes) > PROGRESS_BYTES if progress is None else progress
    cols = empty_columns()
    cols["recording"] = []
    names = _names(paths)
    bar = _bar(sum(sizes)) if show else None
    try:
        for path, size, name in zip(paths, sizes, names):
            before = len(cols["seq"])
            done = 0
            for i, e in enumerate(_events(path)):
                if bar is not None and i % _TICK == _TICK - 1:
                    step = min(size - done, _TICK * max(1, len(e.raw or "")))
                    bar.update(step)
                    done += step
                if not pings and e.is_ping:
                    continue
                add_event(cols, e)
            cols["recording"].extend([name] * (len(cols["seq"]) - before))
            if bar is not None:
                bar.update(size - done)
    finally:
        if bar is not None:
            bar.close()
    return build(cols)


def _names(paths: Sequence[Path]) -> list[str]:
    """File names, or paths relative to the common folder when names repeat."""
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    root = Path(os.path.commonpath([p.resolve() for p in paths]))
    return [str(p.resolve().relative_to(root)) for p in paths]


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="loading recordings")
