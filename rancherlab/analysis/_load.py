"""Recordings on disk → event frames: one frame (`load`), or bounded batches of rows (`iter_frames`).

Files are found and opened by the recording reader (`rancherlab.recording.discover` and
`open_recording_file`: one discovery, one open per file, the header validated there), and read line by line
in bounded memory: a line longer than the recording's limit is streamed past, never held.

Fast path: a recording line of a resource frame is parsed with the protocol's JSON codec, the protocol's
frame-field rule (`frame_event`) reads the frame, and its cells go straight into the column lists. Anything
unusual on a line (a marker, a snapshot, a frame the protocol parser would call an anomaly, a line the codec
cannot read) goes through the recording module's own `decode_event` instead, so both paths give exactly the
frame `frame(read_recording(path))` would.

Damage (what a killed writer or a cut copy leaves: a cut last line, a cut gzip stream, garbage lines, an
over-long line, an empty file, a file of a newer format version) raises with `strict=True`; with
`strict=False` it is skipped and counted, and one `RecordingWarning` says what was skipped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from ..protocol._json import loads
from ..protocol.event import RESOURCE_EVENTS
from ..protocol.frames import frame_event
from ..protocol.objects import TRANSITIONING, object_summary
from ..recording import (
    LineTooLongError,
    RecordingCorruptError,
    RecordingFormatError,
    RecordingTruncatedError,
    RecordingWarning,
    cut_message,
    cut_reason,
    decode_event,
    discover,
    open_recording_file,
    recording_name,
)
from ._frame import FROM_RAW, Row, build, columns, concat_frames, constant, event_row, no_gc

# Above this many bytes in total, `progress=None` shows a bar.
PROGRESS_BYTES: Final = 50 * 1024 * 1024
# Rows per batch of `iter_frames`: memory per batch is bounded by this times the longest accepted line.
BATCH_ROWS: Final = 10_000
# Rows per batch where each batch's objects are parsed and walked (`rancherlab schema`, `to_parquet`):
# small enough that a batch's parsed objects stay a few megabytes.
STREAM_ROWS: Final = 1_000
_TICK: Final = 4096  # lines between progress updates

PathLike = str | os.PathLike[str]


@dataclass
class Skipped:
    """What tolerant reading left out: `lines` (unreadable, cut or over-long lines), `files` ((name, why) of
    files with no usable header: empty, a newer format version, not a recording) and the `first` problem."""

    lines: int = 0
    files: list[tuple[str, str]] = field(default_factory=list)
    first: str | None = None

    def line(self, where: str) -> None:
        self.lines += 1
        self.first = self.first or where

    def file(self, name: str, why: str) -> None:
        self.files.append((name, why))
        self.first = self.first or why

    def __bool__(self) -> bool:
        return bool(self.lines or self.files)

    def message(self) -> str:
        """One line: ``skipped 3 unreadable line(s) and 1 file(s); first: a.jsonl line 5: ...``."""
        what = [f"{self.lines} unreadable line(s)"] if self.lines else []
        what += [f"{len(self.files)} unreadable file(s)"] if self.files else []
        return f"skipped {' and '.join(what)}; first: {self.first}"


def recording_paths(path_or_paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files to load, in order: a folder gives its recordings (rotation parts in order).

    Raises `NoRecordingsError` (a FileNotFoundError) for a missing path or a folder without recordings.
    """
    return discover(path_or_paths)


def load(
    path_or_paths: PathLike | Iterable[PathLike],
    *,
    pings: bool = False,
    progress: bool | None = None,
    strict: bool = True,
) -> pd.DataFrame:
    """Load one or more recordings (files or folders) as one event frame; see `frame` for the columns.

    Adds `recording` (the file name, rotation parts under their first part's name) and `scope` (from each
    file's header), both categorical, so rows from several files stay apart; a folder that mixes dialects and
    scopes is read file by file, each row keeping its recording, dialect and scope. `seq` is per recording.
    Pings are dropped unless `pings=True`. `progress=None` shows a tqdm bar when the input is larger than
    50 MB; True / False force it.

    `strict=True` raises at the first damage: `RecordingCorruptError` (a bad line, with file and line),
    `RecordingTruncatedError` (a cut last line or gzip stream), `LineTooLongError`, `RecordingFormatError`
    (an empty file or one that is not a recording; `RecordingVersionError` for a newer format version).
    `strict=False` skips each of these (lines and whole files), keeps every event it can read and warns once
    (`RecordingWarning`) with the counts. A missing path always raises `NoRecordingsError`
    (a FileNotFoundError).
    """
    skipped = Skipped()
    with no_gc():  # every parsed object is kept: collections would only rescan them
        batches = list(iter_frames(path_or_paths, pings=pings, progress=progress, strict=strict, skipped=skipped))
    if skipped:
        warnings.warn(skipped.message(), RecordingWarning, stacklevel=2)
    return concat_frames(batches)


def iter_frames(
    path_or_paths: PathLike | Iterable[PathLike],
    *,
    pings: bool = False,
    progress: bool | None = False,
    strict: bool = True,
    batch_rows: int = BATCH_ROWS,
    skipped: Skipped | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows `load` gives, as frames of at most `batch_rows` rows (a batch never spans two files).

    Memory stays bounded whatever the size of the recordings: use it to stream a recording through an
    analysis. Errors and `strict` as for `load`; pass `skipped` to collect what tolerant reading left out
    (without it, one `RecordingWarning` is issued at the end).
    """
    if batch_rows <= 0:
        raise ValueError("batch_rows must be positive")
    paths = discover(path_or_paths)
    total = sum(p.stat().st_size for p in paths)
    show = total > PROGRESS_BYTES if progress is None else progress
    bar = _bar(total) if show else None
    report = Skipped() if skipped is None else skipped
    files_before = len(report.files)
    try:
        for path in paths:
            yield from _file_frames(path, pings=pings, strict=strict, batch_rows=batch_rows, bar=bar, skipped=report)
    finally:
        if bar is not None:
            bar.close()
    if paths and len(report.files) - files_before == len(paths):
        # tolerance skips damage in recordings, but none of these is one: that is an error in any mode
        first = report.files[files_before][1]
        raise RecordingFormatError(first if len(paths) == 1 else f"none of {len(paths)} files is a recording; {first}")
    if skipped is None and report:
        warnings.warn(report.message(), RecordingWarning, stacklevel=2)


def _file_frames(
    path: Path, *, pings: bool, strict: bool, batch_rows: int, bar: Any, skipped: Skipped
) -> Iterator[pd.DataFrame]:
    name = recording_name(path)
    size = os.path.getsize(path)
    try:
        opened = open_recording_file(path)
        rf = opened.__enter__()
    except RecordingFormatError as exc:  # empty, not a recording, a newer format version
        if strict:
            raise
        skipped.file(path.name, str(exc))
        if bar is not None:
            bar.update(size)
        return
    done = 0
    try:
        dialect, scope, indexed = rf.header.dialect, rf.header.scope, rf.header.frame_fields
        rows: list[Row] = []
        produced = 0
        for lineno, data, problem in rf.lines():
            if bar is not None and lineno % _TICK == 0:
                pos = rf.position()
                bar.update(pos - done)
                done = pos
            if problem == "long":
                if strict:
                    raise LineTooLongError(path, lineno, rf.too_long())
                skipped.line(f"{path.name} line {lineno}: longer than {rf.limit} bytes")
                continue
            bad = _line(data, dialect, rows, pings, indexed) if data is not None else "no data"
            if problem is None:
                if bad is not None:
                    if strict:
                        raise RecordingCorruptError(path, lineno, bad)
                    skipped.line(f"{path.name} line {lineno}: {bad}")
            elif problem == "stream" or bad is not None:
                # The file ends inside a line, or its gzip stream was cut: what came before is kept.
                if strict:
                    raise RecordingTruncatedError(path, lineno, cut_message(problem, produced + len(rows)))
                skipped.line(f"{path.name} line {lineno}: cut short ({cut_reason(problem)})")
            if len(rows) >= batch_rows:
                produced += len(rows)
                yield _batch(rows, name, scope)
                rows = []
        if rows:
            yield _batch(rows, name, scope)
    finally:
        if bar is not None:
            bar.update(size - done)
        opened.__exit__(None, None, None)


def _batch(rows: list[Row], name: str, scope: str) -> pd.DataFrame:
    with no_gc():
        cols = columns(rows)
        rows.clear()
        n = len(cols["seq"])
        cols["recording"] = constant(name, n)  # type: ignore[assignment]
        cols["scope"] = constant(scope, n)  # type: ignore[assignment]
        return build(cols)


def _line(line: bytes, dialect: str, rows: list[Row], pings: bool, indexed: bool) -> str | None:
    """Add one line's event to the rows; returns what is wrong with it, or None. `indexed`: the header's
    `frame_fields` (frame lines carry their fields and their object's summary)."""
    try:
        obj = loads(line)
    except ValueError:
        if not line.strip():
            return None
        return "not a JSON line"
    if type(obj) is dict:
        if obj.get("kind") == "frame":  # nearly every line: tried first
            if obj.get("name") == "ping" and not pings:
                return None
            if (_indexed_frame if indexed else _fast_frame)(obj, dialect, rows):
                return None
        elif len(obj) == 1 and "summary" in obj:
            return None
    try:
        event = decode_event(obj, dialect, frame_fields=indexed)  # type: ignore[arg-type]
    except (ValueError, TypeError, RecursionError) as exc:
        return f"not a valid event line ({exc})"
    if not pings and event.is_ping:
        return None
    row = event_row(event)
    # times stay ISO text until one vectorised parse at the end
    rows.append((row[0], event.ts.isoformat() if event.ts is not None else None, *row[2:]))
    return None


def _indexed_frame(obj: dict[str, Any], dialect: str, rows: list[Row]) -> bool:
    """Columns straight from the fields of a resource-frame line that carries them (no parsing of `raw`), when it
    is the plain case; False leaves it to the reader."""
    get: Any = obj.get
    name, raw, seq, conn, t, ts = get("name"), get("raw"), get("seq"), get("conn"), get("t"), get("ts")
    if name not in RESOURCE_EVENTS or not isinstance(raw, str) or "info" in obj:  # info: e.g. a disguised error
        return False
    if not (type(seq) is int and type(conn) is int and type(t) in (int, float) and (ts is None or isinstance(ts, str))):
        return False
    typ, oid, revision = get("type"), get("id"), get("revision")
    state, trans, ns, project = get("state"), get("transitioning"), get("namespace"), get("project")
    for value in (typ, oid, revision, state, ns, project):
        if value is not None and type(value) is not str:
            return False
    if trans is not None and trans not in TRANSITIONING:
        return False
    rows.append((seq, ts, float(t), conn, "frame", dialect, name, typ, oid, revision, state, trans, ns, project, raw, FROM_RAW, None))  # fmt: skip
    return True


def _fast_frame(obj: dict[str, Any], dialect: str, rows: list[Row]) -> bool:
    """Columns straight from a resource-frame line without stored fields, when it is the plain case (the frame rule
    reads `raw`); False leaves it to the reader."""
    get: Any = obj.get
    if get("kind") != "frame":
        return False
    name, raw, seq, conn, t, ts = get("name"), get("raw"), get("seq"), get("conn"), get("t"), get("ts")
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
    state, trans, ns, project = object_summary(dialect, data)  # type: ignore[arg-type]
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
            FROM_RAW,  # the object is `data` of the raw text, held once (see JSONObjectArray)
            None,
        )
    )
    return True


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc="loading recordings")
