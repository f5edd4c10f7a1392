"""Recordings on disk → event frames: one frame (`load`), or bounded batches of rows (`iter_frames`).

Files are found and opened by the recording reader (`rancherlab.recording.discover` and
`open_recording_file`: one discovery, one open per file, the header validated there), and read in bounded
memory: a line longer than the recording's limit is streamed past, never held. Every path below gives exactly the
frame `frame(read_recording(path))` would, and the same errors, line numbers and skipped counts.

Columnar path, for files whose header says `frame_fields` (every file `RecordingWriter` writes): the reader hands
over blocks of whole lines (`RecordingFile.blocks`, up to 16 MB), and pyarrow's C++ JSON reader parses each block
on all cores, in a worker thread while the rows of the block before are made here (`_arrow_lines`). The lines of
plain resource frames (a resource event with its fields of their types and no `info`: nearly every line) become
rows straight from the Arrow columns, with no Python object per row (`ArrowBatch`); `load` makes the categoricals
and the DataFrame once, for all batches. Pings are dropped from the table (unless `pings=True`). Every other line
of a block (a marker, a snapshot, a sent message, a frame with `info`) goes through the per-line path on its own,
in its place among the rows. A block pyarrow cannot read as the per-line path would goes through the per-line path
whole: one pyarrow refuses (garbage, a cut line, a field of another type, a duplicate key) and one holding what
pyarrow reads but orjson refuses (NaN or Infinity, nesting past `_DEEPEST` levels, invalid UTF-8, a line that is
not one object: a blank line, two objects on a line).

Per-line path, for the lines above and for files without `frame_fields`: each line is parsed with the protocol's
JSON codec; a resource frame's cells come straight from the line's fields (`_indexed_frame`) or, in files without
them, from the protocol's frame rule reading `raw` (`_fast_frame`). Anything unusual on a line (a marker, a
snapshot, a frame the protocol parser would call an anomaly, a line the codec cannot read) goes through the
recording module's own `decode_event` instead.

Damage (what a killed writer or a cut copy leaves: a cut last line, a cut gzip stream, garbage lines, an
over-long line, an empty file, a file of a newer format version) raises with `strict=True`; with
`strict=False` it is skipped and counted, and one `RecordingWarning` says what was skipped.
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..protocol._json import loads
from ..protocol.event import KINDS, RESOURCE_EVENTS
from ..protocol.frames import frame_event
from ..protocol.objects import TRANSITIONING, object_summary
from ..recording import (
    LineBlock,
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
from ._frame import (
    COLUMNS,
    FROM_RAW,
    ArrowBatch,
    Row,
    _dumps,
    build,
    columns,
    concat_frames,
    constant,
    event_row,
    no_gc,
    objects,
)

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
        batches = list(_batches(path_or_paths, pings=pings, progress=progress, strict=strict, skipped=skipped))
    if skipped:
        warnings.warn(skipped.message(), RecordingWarning, stacklevel=2)
    if batches and all(isinstance(b, ArrowBatch) for b in batches):
        with no_gc():
            return ArrowBatch.join(batches)  # type: ignore[arg-type]
    return concat_frames([b if isinstance(b, pd.DataFrame) else b.frame() for b in batches])


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
    batches = _batches(
        path_or_paths, pings=pings, progress=progress, strict=strict, batch_rows=batch_rows, skipped=skipped
    )
    for batch in batches:
        yield batch if isinstance(batch, pd.DataFrame) else batch.frame()


def _batches(
    path_or_paths: PathLike | Iterable[PathLike],
    *,
    pings: bool,
    progress: bool | None,
    strict: bool,
    batch_rows: int = BATCH_ROWS,
    skipped: Skipped | None,
) -> Iterator[pd.DataFrame | ArrowBatch]:
    """`iter_frames`, with the batches read columnar left as `ArrowBatch`es (so `load` joins them at once)."""
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
        warnings.warn(report.message(), RecordingWarning, stacklevel=3)


def _file_frames(
    path: Path, *, pings: bool, strict: bool, batch_rows: int, bar: Any, skipped: Skipped
) -> Iterator[pd.DataFrame | ArrowBatch]:
    """The batches of one file: columnar when its header says `frame_fields`, else line by line."""
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
        rows = _FileRows(rf, name, pings=pings, strict=strict, batch_rows=batch_rows, skipped=skipped)
        if not rf.header.frame_fields:  # lines without frame fields: each line through the per-line path
            for lineno, data, problem in rf.lines():
                if bar is not None and lineno % _TICK == 0:
                    pos = rf.position()
                    bar.update(pos - done)
                    done = pos
                rows.line(lineno, data, problem)
                if rows.count >= batch_rows:
                    yield from rows.batches()
            yield from rows.batches(final=True)
            return
        # Blocks of lines, read by pyarrow in a worker thread while the rows of earlier ones are made here and the
        # next ones read: `_AHEAD` blocks wait for the worker, so that it does not wait for the reader.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rancherlab-load") as pool:
            ahead: deque[tuple[LineBlock, Future[pa.Table | None]]] = deque()
            for item in rf.blocks(_block_bytes(batch_rows), keep=_AHEAD):
                if bar is not None:
                    pos = rf.position()
                    bar.update(pos - done)
                    done = pos
                if isinstance(item, LineBlock):
                    ahead.append((item, pool.submit(_arrow_lines, item)))
                    if len(ahead) > _AHEAD:  # its memory stays valid until the reader is asked for more
                        yield from rows.block(*ahead.popleft())
                    continue
                while ahead:
                    yield from rows.block(*ahead.popleft())
                rows.line(*item)
                if rows.count >= batch_rows:
                    yield from rows.batches()
            while ahead:
                yield from rows.block(*ahead.popleft())
        yield from rows.batches(final=True)
    finally:
        if bar is not None:
            bar.update(size - done)
        opened.__exit__(None, None, None)


class _FileRows:
    """The rows of one file on their way to batches of `batch_rows`: runs of plain resource frames as the Arrow
    tables pyarrow read them into, other rows as the per-line path's tuples, in the order of their lines."""

    def __init__(self, rf: Any, name: str, *, pings: bool, strict: bool, batch_rows: int, skipped: Skipped) -> None:
        self.rf, self.path, self.name = rf, rf.path, name
        self.dialect, self.scope, self.indexed = rf.header.dialect, rf.header.scope, rf.header.frame_fields
        self.pings, self.strict, self.batch_rows, self.skipped = pings, strict, batch_rows, skipped
        self.pieces: deque[pa.Table | list[Row]] = deque()
        self.rows: list[Row] = []  # the per-line rows after the last table (the last piece, not yet in `pieces`)
        self.held = 0  # rows in `pieces`
        self.produced = 0  # rows handed out in batches

    @property
    def count(self) -> int:
        return self.held + len(self.rows)

    def line(self, lineno: int, data: bytes | None, problem: str | None) -> None:
        """One line through the per-line path: its row (if any) is added, its damage raised or counted."""
        path, skipped = self.path, self.skipped
        if problem == "long":
            if self.strict:
                raise LineTooLongError(path, lineno, self.rf.too_long())
            skipped.line(f"{path.name} line {lineno}: longer than {self.rf.limit} bytes")
            return
        bad = _line(data, self.dialect, self.rows, self.pings, self.indexed) if data is not None else "no data"
        if problem is None:
            if bad is not None:
                if self.strict:
                    raise RecordingCorruptError(path, lineno, bad)
                skipped.line(f"{path.name} line {lineno}: {bad}")
        elif problem == "stream" or bad is not None:
            # The file ends inside a line, or its gzip stream was cut: what came before is kept.
            if self.strict:
                raise RecordingTruncatedError(path, lineno, cut_message(problem, self.produced + self.count))
            skipped.line(f"{path.name} line {lineno}: cut short ({cut_reason(problem)})")

    def block(self, block: LineBlock, parsed: Future[pa.Table | None]) -> Iterator[pd.DataFrame | ArrowBatch]:
        """The rows of a block of whole lines: runs of plain resource frames straight from the table pyarrow read
        (`_arrow_lines`), the other lines (all of them when there is no table) through the per-line path, in the
        order of the lines; yields the batches they fill."""
        table = parsed.result()
        lineno, data, ends = block.first, block.data, block.ends
        runs = [(_LINE, 0, len(ends))] if table is None else _runs(_routes(table, self.pings))
        if table is not None:
            table = table.select(_ARROW_COLUMNS)  # what the rows need: the inferred fields are let go
        at: list[int] | None = None
        for route, first, stop in runs:
            if route == _PLAIN:
                self.table(table.slice(first, stop - first))  # type: ignore[union-attr]
                yield from self.batches()
            elif route == _LINE:
                at = ends.tolist() if at is None else at
                for i in range(first, stop):
                    self.line(lineno + i, bytes(data[at[i - 1] + 1 if i else 0 : at[i]]), None)
                    if self.count >= self.batch_rows:
                        yield from self.batches()

    def table(self, table: pa.Table) -> None:
        if self.rows:
            self.pieces.append(self.rows)
            self.held += len(self.rows)
            self.rows = []
        self.pieces.append(table)
        self.held += table.num_rows

    def batches(self, *, final: bool = False) -> Iterator[pd.DataFrame | ArrowBatch]:
        """The full batches held (and with `final` the rest): each exactly `batch_rows` rows, as the per-line path
        cuts them."""
        if not self.indexed:  # a file without frame fields: rows only, built as they always were
            if self.rows and (final or len(self.rows) >= self.batch_rows):
                self.produced += len(self.rows)
                rows, self.rows = self.rows, []
                yield _batch(rows, self.name, self.scope)
            return
        while self.count >= self.batch_rows or (final and self.count):
            if self.rows:
                self.pieces.append(self.rows)
                self.held += len(self.rows)
                self.rows = []
            take: list[pa.Table | list[Row]] = []
            need = min(self.batch_rows, self.held)
            self.held -= need
            self.produced += need
            while need:
                piece = self.pieces.popleft()
                n = piece.num_rows if isinstance(piece, pa.Table) else len(piece)
                if n > need:  # the rest of it starts the next batch
                    self.pieces.appendleft(piece.slice(need) if isinstance(piece, pa.Table) else piece[need:])
                    piece = piece.slice(0, need) if isinstance(piece, pa.Table) else piece[:need]
                    n = need
                take.append(piece)
                need -= n
            yield _pieces_batch(take, self.name, self.scope, self.dialect)


def _batch(rows: list[Row], name: str, scope: str) -> pd.DataFrame:
    with no_gc():
        cols = columns(rows)
        rows.clear()
        n = len(cols["seq"])
        cols["recording"] = constant(name, n)  # type: ignore[assignment]
        cols["scope"] = constant(scope, n)  # type: ignore[assignment]
        return build(cols)


# --- the columnar path ----------------------------------------------------------------------------------------

# Bytes of lines handed to pyarrow at once: enough for both cores to share a call, about a batch of `load`.
_BLOCK_MAX: Final = 16 * 1024 * 1024
_BLOCK_MIN: Final = 1024 * 1024
# Blocks read ahead of the one whose rows are being made.
_AHEAD: Final = 1
# The blocks pyarrow parses in parallel inside one call (each at least the longest line).
_ARROW_BLOCK: Final = 4 * 1024 * 1024
_STRING = pa.large_string()
# The line fields the frame's columns come from. Other fields are inferred, so that everything on a line is seen.
_LINE_FIELDS: Final = pa.schema(
    [
        ("seq", pa.int64()),
        ("t", pa.float64()),
        ("ts", _STRING),
        ("conn", pa.int64()),
        ("kind", _STRING),
        ("name", _STRING),
        ("type", _STRING),
        ("id", _STRING),
        ("revision", _STRING),
        ("state", _STRING),
        ("transitioning", _STRING),
        ("namespace", _STRING),
        ("project", _STRING),
        ("raw", _STRING),
    ]
)
_PARSE: Final = pj.ParseOptions(explicit_schema=_LINE_FIELDS, unexpected_field_behavior="infer")
_ARROW_COLUMNS: Final = tuple(_LINE_FIELDS.names)
# Nesting (of the inferred fields) past which a line is left to the per-line path, far below orjson's 1,024 levels.
_DEEPEST: Final = 256
_RESOURCE: Final = pa.array(sorted(RESOURCE_EVENTS), _STRING)
_TRANSITIONING_OR_NULL: Final = pa.array([*TRANSITIONING, None], _STRING)
_OPEN_BRACE: Final = ord("{")
# How a line of a block is read: its row from the Arrow table, not at all (a ping), or by the per-line path.
_PLAIN, _DROP, _LINE = 0, 1, 2


def _block_bytes(batch_rows: int) -> int:
    """Block size for `batch_rows`: lines of events are often a couple of kilobytes."""
    return max(_BLOCK_MIN, min(_BLOCK_MAX, batch_rows * 2048))


def _arrow_lines(block: LineBlock) -> pa.Table | None:
    """The lines of `block` as one Arrow table, one row per line, read by pyarrow's C++ JSON reader on all cores;
    None when the block must go through the per-line path instead.

    pyarrow is more lenient than the protocol's JSON codec, so a table is only returned when each row is its line
    and nothing on any line is something orjson would refuse: every line starts an object (no blank line, no line
    without an object, so with as many rows as lines no line holds two objects), the text is valid UTF-8, no
    number is NaN or infinite (RapidJSON reads `NaN` and `Infinity`), nothing is nested deeper than `_DEEPEST`.
    Any pyarrow error (garbage, a field of another type, ...) also leaves the block to the per-line path, which
    then says exactly what is wrong where.
    """
    ends = block.ends
    text = np.frombuffer(block.data, np.uint8)
    if text[0] != _OPEN_BRACE or (len(ends) > 1 and not (text[ends[:-1] + 1] == _OPEN_BRACE).all()):
        return None
    longest = int(np.diff(ends, prepend=-1).max())
    buffer = pa.py_buffer(block.data)
    try:
        if not block.ascii:
            offsets = pa.py_buffer(np.array([0, len(buffer)], dtype=np.int64))
            pa.Array.from_buffers(_STRING, 1, [None, offsets, buffer]).validate(full=True)  # UTF-8
        options = pj.ReadOptions(use_threads=True, block_size=max(_ARROW_BLOCK, longest + 2))
        table = pj.read_json(pa.BufferReader(buffer), read_options=options, parse_options=_PARSE)
    except (pa.ArrowException, ValueError):  # ArrowInvalid is both
        return None
    if table.num_rows != len(ends) or not _json_values(table):
        return None
    return table


def _json_values(table: pa.Table) -> bool:
    """False if a column holds a value JSON has not (NaN, ±infinity) or nests deeper than `_DEEPEST`."""
    for column in table.columns:
        floats = False
        todo = [(column.type, 1)]
        while todo:
            typ, depth = todo.pop()
            if depth > _DEEPEST:
                return False
            if pa.types.is_floating(typ):
                floats = True
            elif pa.types.is_struct(typ):
                todo.extend((typ.field(i).type, depth + 1) for i in range(typ.num_fields))
            elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
                todo.append((typ.value_type, depth + 1))
        if floats:
            arrays = list(column.chunks)
            while arrays:
                arr = arrays.pop()
                typ = arr.type
                if pa.types.is_floating(typ):
                    if pc.any(pc.invert(pc.is_finite(arr))).as_py():
                        return False
                elif pa.types.is_struct(typ):
                    arrays.extend(arr.field(i) for i in range(typ.num_fields))
                elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
                    arrays.append(arr.flatten())
    return True


def _routes(table: pa.Table, pings: bool) -> np.ndarray:
    """Per row, `_PLAIN` for what `_indexed_frame` takes straight from the line (a resource frame with its fields of
    their types and no `info`), `_DROP` for a ping when pings are left out, `_LINE` for anything else."""
    kind, name, trans = table.column("kind"), table.column("name"), table.column("transitioning")
    info = table.column("info") if "info" in table.column_names else None  # e.g. a disguised watch error
    plain_trans = pc.is_in(trans, value_set=_TRANSITIONING_OR_NULL)
    if (  # nearly always: every line a plain resource frame
        all(table.column(c).null_count == 0 for c in ("kind", "seq", "conn", "t", "raw"))
        and (info is None or info.null_count == len(info))
        and pc.all(pc.is_in(name, value_set=_RESOURCE)).as_py()
        and pc.all(pc.equal(kind, "frame")).as_py()
        and pc.all(plain_trans).as_py()
    ):
        return np.full(table.num_rows, _PLAIN, dtype=np.int8)

    def yes(mask: Any) -> np.ndarray:
        return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)

    frame = yes(pc.equal(kind, "frame"))
    plain = frame & yes(pc.is_in(name, value_set=_RESOURCE)) & yes(plain_trans)
    for c in ("seq", "conn", "t", "raw"):
        plain &= yes(pc.is_valid(table.column(c)))
    if info is not None:
        plain &= yes(pc.is_null(info))
    route = np.where(plain, _PLAIN, _LINE).astype(np.int8)
    if not pings:
        route[frame & yes(pc.equal(name, "ping"))] = _DROP
    return route


def _runs(route: np.ndarray) -> list[tuple[int, int, int]]:
    """(route, first row, stop) of each run of rows read the same way, in order."""
    if not route.any():  # all _PLAIN
        return [(_PLAIN, 0, len(route))]
    cuts = (np.flatnonzero(np.diff(route)) + 1).tolist()
    starts, stops = [0, *cuts], [*cuts, len(route)]
    return [(int(route[a]), a, b) for a, b in zip(starts, stops)]


def _pieces_batch(pieces: list[pa.Table | list[Row]], name: str, scope: str, dialect: str) -> pd.DataFrame | ArrowBatch:
    """One batch from its pieces in order: an `ArrowBatch` of the Arrow columns when every row fits them, else (a
    row with a value of another type: the rare damaged line) the DataFrame `build` makes of Python rows."""
    with no_gc():
        try:
            parts = _arrow_parts(pieces, dialect)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            parts = None
        if parts is None:
            rows: list[Row] = []
            for piece in pieces:
                rows.extend(_table_rows(piece, dialect) if isinstance(piece, pa.Table) else piece)
            return _batch(rows, name, scope)
        return ArrowBatch(**parts, sources={"recording": name, "scope": scope})  # raises what `build` would


_KIND_CODES: Final = {k: i for i, k in enumerate(KINDS)}
_ROW_TYPES: Final = {c: _LINE_FIELDS.field(c).type for c in _ARROW_COLUMNS}
_ROW_INDEX: Final = {**{c: COLUMNS.index(c) for c in _ARROW_COLUMNS if c != "ts"}, "ts": COLUMNS.index("time")}


def _arrow_parts(pieces: list[pa.Table | list[Row]], dialect: str) -> dict[str, Any] | None:
    """`ArrowBatch`'s arguments for the pieces; None if a per-line row has a value the Arrow columns do not take."""
    chunks: dict[str, list[pa.Array]] = {c: [] for c in _ARROW_COLUMNS}
    kinds, wrapped, own, info = [], [], [], []
    for piece in pieces:
        if isinstance(piece, pa.Table):
            n = piece.num_rows
            for c in _ARROW_COLUMNS:
                chunks[c].extend(piece.column(c).chunks)
            kinds.append(np.full(n, _KIND_CODES["frame"], dtype=np.int8))
            wrapped.append(np.ones(n, dtype=bool))
            own.append(pa.nulls(n, _STRING))
            info.append(np.full(n, None, dtype=object))
            continue
        cells = list(zip(*piece))
        for i in (0, 3):  # seq, conn
            if any(type(v) is not int for v in cells[i]):
                return None
        if any(type(v) is not float for v in cells[2]) or any(d != dialect for d in cells[5]):
            return None
        for c in _ARROW_COLUMNS:
            chunks[c].append(pa.array(cells[_ROW_INDEX[c]], type=_ROW_TYPES[c]))
        kinds.append(np.array([_KIND_CODES[k] for k in cells[4]], dtype=np.int8))
        objects_ = cells[COLUMNS.index("object")]
        wrapped.append(np.array([v is FROM_RAW for v in objects_], dtype=bool))
        own.append(pa.array([None if v is None or v is FROM_RAW else _dumps(v) for v in objects_], type=_STRING))
        info.append(objects(list(cells[COLUMNS.index("info")])))
    return {
        "cols": {c: pa.chunked_array(chunks[c], type=_ROW_TYPES[c]) for c in _ARROW_COLUMNS},
        "kind_codes": np.concatenate(kinds),
        "dialect": dialect,
        "wrapped": np.concatenate(wrapped),
        "own": pa.chunked_array(own, type=_STRING),
        "info": np.concatenate(info),
    }


def _table_rows(table: pa.Table, dialect: str) -> list[Row]:
    """A table's rows as the per-line path makes them (`_indexed_frame`)."""
    c = {name: table.column(name).to_pylist() for name in _ARROW_COLUMNS}
    return [
        (seq, ts, t, conn, "frame", dialect, name, typ, oid, rev, state, trans, ns, project, raw, FROM_RAW, None)
        for seq, ts, t, conn, name, typ, oid, rev, state, trans, ns, project, raw in zip(
            c["seq"], c["ts"], c["t"], c["conn"], c["name"], c["type"], c["id"], c["revision"], c["state"],
            c["transitioning"], c["namespace"], c["project"], c["raw"],
        )
    ]  # fmt: skip


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
    if name not in RESOURCE_EVENTS or not isinstance(raw, str) or get("info") is not None:  # e.g. a disguised error
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
