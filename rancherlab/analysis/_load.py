"""Recordings on disk → one event frame (several files or a folder → one frame with a `recording` column).

Fast path: a recording line of a resource frame is parsed with the protocol's JSON codec, the protocol's
frame-field rule (`frame_event`) reads the frame, and its cells go straight into the column lists. Anything
unusual on a line (a marker, a snapshot, a frame the protocol parser would call an anomaly, a line the codec
cannot read) goes through the recording module's own `decode_event` instead, so both paths give exactly the
frame `frame(read_recording(path))` would.
"""

from __future__ import annotations

import gzip
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd

from ..protocol._json import loads
from ..protocol.event import RESOURCE_EVENTS
from ..protocol.frames import frame_event
from ..recording import (
    RecordingCorruptError,
    RecordingWarning,
    decode_event,
    line_limit,
    read_recording,
    recording_files,
)
from ._frame import Row, build, columns, event_row, no_gc, object_fields

# Above this many bytes in total, `progress=None` shows a bar.
PROGRESS_BYTES: Final = 50 * 1024 * 1024
_TICK: Final = 4096  # lines between progress updates
# `name.jsonl`, `name.1.jsonl.gz`, ...: rotation parts of one recording share the name without the part number.
_PART: Final = re.compile(r"\A(?P<base>.+?)(?:\.(?P<part>\d+))?(?P<suffix>\.jsonl(?:\.gz)?)\Z")
_GZIP_MAGIC: Final = b"\x1f\x8b"

PathLike = str | os.PathLike[str]


def recording_name(path: Path) -> str:
    """The name a file's rows get in the `recording` column: rotation parts share their first part's name."""
    m = _PART.match(path.name)
    return f"{m['base']}{m['suffix']}" if m else path.name


def recording_paths(path_or_paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files to load, in order: a folder gives its recordings (rotation parts in order)."""
    items = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if not p.exists():
            raise FileNotFoundError(f"no such recording: {p}")
        if p.is_dir() and not any(f.is_file() and _PART.match(f.name) for f in p.iterdir()):
            raise FileNotFoundError(f"{p} has no recordings (*.jsonl or *.jsonl.gz files)")
        out.extend(recording_files(p))
    return out


def load(
    path_or_paths: PathLike | Iterable[PathLike],
    *,
    pings: bool = False,
    progress: bool | None = None,
    strict: bool = True,
) -> pd.DataFrame:
    """Load one or more recordings (files or folders) as one event frame; see `frame` for the columns.

    Adds `recording` (the file name, categorical) so rows from several files stay apart; `seq` is per
    recording. Pings are dropped unless `pings=True`. `progress=None` shows a tqdm bar when the input is
    larger than 50 MB; True / False force it. `strict=False` skips unreadable lines with one
    `RecordingWarning`, as `read_recording(strict=False)` does.
    """
    paths = recording_paths(path_or_paths)
    sizes = [p.stat().st_size for p in paths]
    show = sum(sizes) > PROGRESS_BYTES if progress is None else progress
    rows: list[Row] = []
    names: list[str] = []
    bar = _bar(sum(sizes)) if show else None
    skipped: list[str] = []
    with no_gc():
        try:
            for path in paths:
                before = len(rows)
                _load_file(path, rows, pings=pings, strict=strict, bar=bar, skipped=skipped)
                names.extend([recording_name(path)] * (len(rows) - before))
        finally:
            if bar is not None:
                bar.close()
        cols = columns(rows)
        del rows
        cols["recording"] = names
        df = build(cols)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable line(s); first: {skipped[0]}", RecordingWarning, stacklevel=2)
    return df


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if raw.read(2) == _GZIP_MAGIC:
        raw.seek(0)
        return raw, gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    raw.seek(0)
    return raw, raw


def _load_file(path: Path, rows: list[Row], *, pings: bool, strict: bool, bar: Any, skipped: list[str]) -> None:
    header = read_recording(path).header  # validates the header (format, version) with the reader's messages
    dialect = header.dialect
    limit = line_limit(header.max_frame_bytes)
    raw, stream = _open(path)
    done = 0
    try:
        stream.readline()  # the header
        for lineno, line in enumerate(stream, 2):
            if bar is not None and lineno % _TICK == 0:
                pos = raw.tell()
                bar.update(pos - done)
                done = pos
            problem = _line(line, lineno, dialect, limit, rows, pings)
            if problem is None:
                continue
            if strict:
                raise RecordingCorruptError(path, lineno, problem)
            skipped.append(f"{path.name} line {lineno}: {problem}")
    finally:
        if bar is not None:
            bar.update(os.path.getsize(path) - done)
        stream.close()
        raw.close()


def _line(line: bytes, lineno: int, dialect: str, limit: int, rows: list[Row], pings: bool) -> str | None:
    """Add one line's event to the columns; returns what is wrong with it, or None."""
    if len(line) > limit:
        return f"line is longer than {limit} bytes"
    if not line.strip():
        return None
    try:
        obj = loads(line)
    except ValueError:
        if not line.endswith(b"\n"):  # the writer ends every line: this one was cut short
            return "the file was cut short (its last line is incomplete)"
        return "not a JSON line"
    if isinstance(obj, dict) and obj.keys() == {"summary"}:
        return None
    if isinstance(obj, dict) and obj.get("kind") == "frame" and obj.get("name") == "ping" and not pings:
        return None
    if isinstance(obj, dict) and _fast_frame(obj, dialect, rows):
        return None
    try:
        event = decode_event(obj, dialect)  # type: ignore[arg-type]
    except (ValueError, TypeError, RecursionError) as exc:
        return f"not a valid event line ({exc})"
    if not pings and event.is_ping:
        return None
    row = event_row(event)
    # times stay ISO text until one vectorised parse at the end
    rows.append((row[0], event.ts.isoformat() if event.ts is not None else None, *row[2:]))
    return None


def _fast_frame(obj: dict[str, Any], dialect: str, rows: list[Row]) -> bool:
    """Columns straight from a resource-frame line, when it is the plain case; False leaves it to the parser."""
    if obj.get("kind") != "frame":
        return False
    name, raw, seq, conn, t, ts = (obj.get(k) for k in ("name", "raw", "seq", "conn", "t", "ts"))
    if name not in RESOURCE_EVENTS or not isinstance(raw, str):
        return False
    if not (type(seq) is int and type(conn) is int and type(t) in (int, float) and (ts is None or isinstance(ts, str))):
        return False
    try:
        event = frame_event(loads(raw), dialect, raw)  # type: ignore[arg-type]
    except ValueError:  # an anomaly (ProtocolError), or text the codec cannot read: the parser says why
        return False
    data = event.data
    if event.name != name or event.info or not isinstance(data, dict):  # info: e.g. a disguised watch error
        return False
    typ, oid, revision = event.type, event.id, event.revision
    state, trans, ns, project = object_fields(dialect, data)
    rows.append(
        (
            seq,
            ts,
            float(t),
            conn,
            "frame",
            dialect,
            name,
            typ,
            oid,
            revision,
            state,
            trans,
            ns,
            project,
            raw,
            data,
            None,
        )
    )
    return True


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="loading recordings")
