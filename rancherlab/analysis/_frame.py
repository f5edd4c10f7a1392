"""Events → one pandas DataFrame, one row per event, with dtypes chosen for the data.

The frame is built column-wise in a single pass (lists → arrays → one `DataFrame` call): appending rows
or normalising nested JSON per row is what makes naive JSONL loading slow (research §E).
"""

from __future__ import annotations

import builtins
import functools
import gc
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype
from pandas.api.indexers import check_array_indexer
from pandas.api.types import union_categoricals

from ..protocol.event import DIALECTS, FROM_RAW, KINDS, RESOURCE_EVENTS, Event
from ..protocol.objects import TRANSITIONING, object_summary

# Column order of every frame; `recording` and `scope` are added by `load()` only.
COLUMNS: Final = (
    "seq",
    "time",
    "t",
    "conn",
    "kind",
    "dialect",
    "name",
    "type",
    "id",
    "revision",
    "state",
    "transitioning",
    "namespace",
    "project",
    "raw",
    "object",
    "info",
)
STRING: Final = pd.StringDtype("pyarrow")
KIND_DTYPE: Final = pd.CategoricalDtype(list(KINDS))
DIALECT_DTYPE: Final = pd.CategoricalDtype(list(DIALECTS))
# Norman's vocabulary is the richer one, so Steve's two booleans are mapped onto it.
TRANSITIONING_DTYPE: Final = pd.CategoricalDtype(list(TRANSITIONING))
# Repeated strings: categorical. Unique-ish strings: Arrow-backed.
_CATEGORICAL: Final = ("name", "type", "state", "namespace", "project", "recording", "scope")
# Categoricals of a fixed vocabulary: every frame has the same dtype.
_FIXED_CATEGORIES: Final = ("kind", "dialect", "transitioning")
# Columns `load()` adds after `COLUMNS`.
SOURCE_COLUMNS: Final = ("recording", "scope")
_STRINGS: Final = ("id", "revision", "raw")


def empty_columns() -> dict[str, list[Any]]:
    return {c: [] for c in COLUMNS}


Row = tuple[Any, ...]


def event_row(e: Event) -> Row:
    """One event's cells in `COLUMNS` order (the only per-event work)."""
    data = e.data
    if e.kind in ("snapshot", "resync") or (e.kind == "frame" and e.name in RESOURCE_EVENTS):
        state, trans, ns, project = object_summary(e.dialect, data)
    else:
        state = trans = project = None
        ns = (e.watch.get("namespace") or None) if e.watch else None
    return (
        e.seq,
        e.ts,
        e.t,
        e.conn,
        e.kind,
        e.dialect,
        e.name,
        e.type,
        e.id,
        e.revision,
        state,
        trans,
        ns,
        project,
        e.raw,
        data,
        dict(e.info) if e.info else None,
    )


def columns(rows: list[Row]) -> dict[str, list[Any]]:
    """Rows → column lists: one transpose at the end beats appending to 17 lists per event."""
    if not rows:
        return empty_columns()
    return {c: list(v) for c, v in zip(COLUMNS, zip(*rows))}


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic GC while bulk-building: every parsed object is kept and no cycles are made, yet each
    full collection would rescan them all, which costs more than the parsing itself."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def frame(events: Iterable[Event], *, pings: bool = False) -> pd.DataFrame:
    """One row per event (see `COLUMNS`); pings are dropped unless `pings=True` since they carry no data.

    Dtypes: `seq`/`conn` Int64; `time` UTC datetime (from `ts`); `t` float seconds; `kind` and `dialect`
    categoricals of the fixed vocabularies; `name`, `type`, `state`, `namespace`, `project` categoricals;
    `id`, `revision`, `raw` Arrow strings; `object` (the parsed `data`) and `info` (marker fields) Python
    objects. `transitioning` is one categorical for both dialects, values "no" / "yes" / "error": Norman's
    strings as sent; Steve's `metadata.state` maps `error: true` → "error", else `transitioning: true` →
    "yes", else "no"; missing → NA.
    """
    with no_gc():
        return build(columns([event_row(e) for e in events if pings or not e.is_ping]))


def build(cols: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Column lists → DataFrame with the documented dtypes."""
    n = len(cols["seq"])
    out: dict[str, Any] = {
        "seq": pd.array(cols["seq"], dtype="Int64"),
        "time": _times(cols["time"], n),
        "t": np.asarray(cols["t"], dtype="float64") if n else np.empty(0, "float64"),
        "conn": pd.array(cols["conn"], dtype="Int64"),
        "kind": pd.Categorical(cols["kind"], dtype=KIND_DTYPE),
        "dialect": pd.Categorical(cols["dialect"], dtype=DIALECT_DTYPE),
    }
    arrow: dict[str, pa.Array] = {}
    for c in COLUMNS[6:]:
        values = cols[c]
        if c == "transitioning":
            out[c] = pd.Categorical(values, dtype=TRANSITIONING_DTYPE)
        elif c in _CATEGORICAL:
            out[c] = categorical(values)
        elif c in _STRINGS:
            arrow[c] = pa.array(values, type=pa.large_string())
            out[c] = pd.arrays.ArrowStringArray(pa.chunked_array([arrow[c]]))
        elif c == "object":
            out[c] = JSONObjectArray.from_cells(values, arrow["raw"])  # shares the raw column's buffers
        else:
            out[c] = objects(values)
    for c in SOURCE_COLUMNS:
        if c in cols:
            values = cols[c]
            out[c] = values if isinstance(values, pd.Categorical) else categorical(values)
    return pd.DataFrame(out)


class ArrowBatch:
    """A batch of rows held as Arrow and numpy arrays: the columns `build` makes for the same rows, made without a
    Python object per row, and turned into pandas (categoricals, one DataFrame) only when asked.

    `cols` holds `seq`, `conn` (int64, no nulls), `t` (float64), `ts` (ISO text, as `build` takes `time`) and the
    string columns `name` … `raw` (large strings), all of one length; `kind_codes` are positions in `KINDS`, every
    row is of `dialect`; `wrapped`, `own` and `info` are the `object` column's parts (see `JSONObjectArray`) and the
    `info` cells; `sources` the values of `SOURCE_COLUMNS` (the same for every row). What can fail for odd values
    (the times) is done here, when the batch is made, as `build` would; `frame` gives the batch's DataFrame, `join`
    one DataFrame of many batches equal to `concat_frames` of their frames, with the categoricals made once.
    """

    def __init__(
        self,
        cols: Mapping[str, pa.ChunkedArray],
        kind_codes: np.ndarray,
        dialect: str,
        wrapped: np.ndarray,
        own: pa.ChunkedArray,
        info: np.ndarray,
        sources: Mapping[str, str],
    ) -> None:
        n = self.n = len(kind_codes)
        self.seq = _int64(cols["seq"], n)
        self.time = arrow_times(cols["ts"], n).array
        self.t = cols["t"].to_numpy() if n else np.empty(0, "float64")
        self.conn = _int64(cols["conn"], n)
        self.kind_codes = kind_codes
        self.dialect_codes = np.full(n, DIALECTS.index(dialect), np.int8)
        self.strings = {c: cols[c] for c in _STRINGS}
        # the categorical columns as (values, positions in values, len(values) for missing): their categories are
        # the union of every batch's values, known only when the batches are joined
        self.encoded = {c: _encode(cols[c]) for c in _CATEGORICAL + ("transitioning",) if c in cols}
        self.wrapped, self.own, self.info, self.sources = wrapped, own, info, dict(sources)

    def frame(self) -> pd.DataFrame:
        return self.join([self])

    @staticmethod
    def join(batches: list[ArrowBatch]) -> pd.DataFrame:
        """One DataFrame of the batches' rows, in order."""

        def chunks(c: str) -> pa.ChunkedArray:
            return pa.chunked_array([ch for b in batches for ch in b.strings[c].chunks], type=pa.large_string())

        n = sum(b.n for b in batches)
        out: dict[str, Any] = {
            "seq": pd.arrays.IntegerArray(np.concatenate([b.seq for b in batches]), np.zeros(n, dtype=bool)),
            "time": type(batches[0].time)._concat_same_type([b.time for b in batches]),
            "t": np.concatenate([b.t for b in batches]),
            "conn": pd.arrays.IntegerArray(np.concatenate([b.conn for b in batches]), np.zeros(n, dtype=bool)),
            "kind": pd.Categorical.from_codes(np.concatenate([b.kind_codes for b in batches]), dtype=KIND_DTYPE),
            "dialect": pd.Categorical.from_codes(
                np.concatenate([b.dialect_codes for b in batches]), dtype=DIALECT_DTYPE
            ),
        }
        for c in COLUMNS[6:]:
            if c == "transitioning":
                out[c] = _decode([b.encoded[c] for b in batches], TRANSITIONING_DTYPE)
            elif c in _CATEGORICAL:
                out[c] = _decode([b.encoded[c] for b in batches])
            elif c in _STRINGS:
                out[c] = pd.arrays.ArrowStringArray(chunks(c))
            elif c == "object":  # each batch's object cells share that batch's raw buffers
                raws = [
                    ch
                    for b in batches
                    for ch in (b.strings["raw"].chunks if b.wrapped.any() else [pa.nulls(b.n, pa.large_string())])
                ]
                own = [ch for b in batches for ch in b.own.chunks]
                out[c] = JSONObjectArray(
                    pa.chunked_array(raws, type=pa.large_string()),
                    pa.chunked_array(own, type=pa.large_string()),
                    np.concatenate([b.wrapped for b in batches]),
                )
            else:
                out[c] = np.concatenate([b.info for b in batches])
        for c in SOURCE_COLUMNS:
            values = [b.sources[c] for b in batches]
            names = sorted(set(values))
            codes = [np.full(b.n, names.index(v), dtype=np.int32) for b, v in zip(batches, values)]
            out[c] = pd.Categorical.from_codes(np.concatenate(codes), dtype=_categories(tuple(names)))
        return pd.DataFrame(out)


def _int64(values: pa.ChunkedArray, n: int) -> np.ndarray:
    if values.null_count:
        raise ValueError("integer column with missing values")
    return values.to_numpy().astype(np.int64, copy=False) if n else np.empty(0, np.int64)


# The times recording writers store (`_iso`: UTC, microseconds, "Z"; `isoformat()`: "+00:00"). Arrow reads these
# exactly as pandas does; for anything else the times go through `_times`, which `build` uses.
_ISO_UTC: Final = (
    r"^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|\+00:00)$"
)


def arrow_times(values: pa.ChunkedArray, n: int) -> Any:
    """ISO 8601 texts (or nulls) → UTC datetimes of microseconds, as `build` parses the `time` column."""
    if n and values.null_count < n:
        if pc.all(pc.match_substring_regex(values, _ISO_UTC)).as_py():
            try:
                stamps = pc.cast(values, pa.timestamp("us", "UTC"))
            except (pa.ArrowException, ValueError):  # e.g. the 30th of February: pandas says why
                return _times(values.to_pylist(), n)
            return pd.DatetimeIndex(stamps.to_numpy()).tz_localize("UTC")
        return _times(values.to_pylist(), n)
    return _times([None] * n, n)


def _encode(values: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """Strings (or nulls) → (the distinct values, each row's position in them; `len(values)` for a missing one)."""
    encoded = pc.dictionary_encode(values.combine_chunks() if values.num_chunks != 1 else values.chunk(0))
    words = encoded.dictionary.to_pylist()
    return words, encoded.indices.fill_null(len(words)).to_numpy()


def _decode(parts: list[tuple[list[str], np.ndarray]], dtype: pd.CategoricalDtype | None = None) -> pd.Categorical:
    """`_encode`d pieces, in order → the categorical `categorical` makes of their values (categories sorted), or one
    of the fixed `dtype` (values outside its categories missing, as `pd.Categorical(values, dtype=dtype)` has them)."""
    if dtype is None:
        dtype = _categories(tuple(sorted(set().union(*(words for words, _ in parts)))))  # code point order, as pandas
    known = {v: i for i, v in enumerate(dtype.categories)}
    codes = [np.array([known.get(w, -1) for w in words] + [-1], dtype=np.int32)[at] for words, at in parts]
    return pd.Categorical.from_codes(np.concatenate(codes) if codes else np.empty(0, np.int32), dtype=dtype)


@functools.lru_cache(maxsize=256)
def _categories(words: tuple[str, ...]) -> pd.CategoricalDtype:
    """The dtype of a categorical of these sorted strings; one object per set of categories, so batches of one
    recording share their dtypes (made once, and `concat_frames` joins their codes directly)."""
    return pd.CategoricalDtype(pd.Index(list(words), dtype=STRING))


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of the same columns (batches of `build`) → one, column by column, with the documented dtypes.

    Arrow string columns are joined without copying their buffers; categoricals get the union of their
    categories, sorted, as `categorical` makes them.
    """
    if not frames:
        return build(empty_columns())
    if len(frames) == 1:
        return frames[0]
    out: dict[str, Any] = {}
    for c in frames[0].columns:
        parts = [f[c].array for f in frames]
        first = parts[0]
        if c in _FIXED_CATEGORIES:  # one dtype for every batch: join the codes
            out[c] = pd.Categorical.from_codes(np.concatenate([p.codes for p in parts]), dtype=first.dtype)
        elif isinstance(first, pd.Categorical):
            if all(p.dtype is first.dtype for p in parts) and first.categories.is_monotonic_increasing:
                # the same sorted categories everywhere (`_categories`): their union is themselves
                out[c] = pd.Categorical.from_codes(np.concatenate([p.codes for p in parts]), dtype=first.dtype)
                continue
            joined = union_categoricals(parts, sort_categories=True)
            cats = pd.Index(joined.categories.astype(str), dtype=STRING)
            out[c] = pd.Categorical.from_codes(joined.codes, dtype=pd.CategoricalDtype(cats))
        else:
            out[c] = type(first)._concat_same_type(parts)
    return pd.DataFrame(out)


def constant(value: str, n: int) -> pd.Categorical:
    """`n` times the same string, as `categorical` would make it (one category, no per-row work)."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), dtype=_categories((value,)))


def categorical(values: Iterable[Any]) -> pd.Categorical:
    """Categories sorted and typed as Arrow strings, so two frames of the same values compare equal."""
    cat = pd.Categorical(values)
    cats = pd.Index(cat.categories.astype(str), dtype=STRING)
    return pd.Categorical.from_codes(cat.codes, dtype=pd.CategoricalDtype(cats))


def objects(values: list[Any]) -> np.ndarray:
    # fromiter keeps nested lists as single cells (np.array would try to broadcast them).
    return np.fromiter(values, dtype=object, count=len(values))


def _times(values: list[Any], n: int) -> pd.DatetimeIndex:
    if not n:
        return pd.DatetimeIndex([], dtype="datetime64[us, UTC]")
    first = next((v for v in values if v is not None), None)
    if isinstance(first, (int, float)):
        return pd.to_datetime(pd.array(values, dtype="Float64"), unit="s", utc=True).as_unit("us")
    # Naive datetimes are read as UTC: recordings store UTC wall-clock times.
    return pd.to_datetime(values, utc=True, format="ISO8601" if isinstance(first, str) else None).as_unit("us")


# --- the `object` column: each event's object held once, as JSON text, parsed on access ----------------


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # integers past 64 bits, NaN: the standard library reads them
        return json.loads(text)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers past 64 bits
        return json.dumps(value, separators=(",", ":"))


# Marks a row whose object is its frame's `data`: the text stored is the frame's raw text (no second copy made).


@register_extension_dtype
class JSONObjectDtype(ExtensionDtype):
    """The dtype of the `object` column: JSON objects held as text (`JSONObjectArray`)."""

    name = "rancherlab.json"
    type = object
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> builtins.type[JSONObjectArray]:
        return JSONObjectArray


class JSONObjectArray(ExtensionArray):
    """Parsed JSON values (an event's `data`) held as Arrow text and parsed when read.

    A parsed object takes about five times the memory of its JSON text; holding the text keeps a loaded
    recording near its size on disk. Reading a cell (`.iloc[i]`, `.tolist()`, iteration, `.map`) parses it and
    gives a fresh copy each time: change a copy, not the frame. For rows of resource frames (`wrapped`) the
    value is the `data` member of the frame's raw text, and the Arrow buffers are those of the `raw` column:
    the text is held once. Other rows hold their value's own JSON text.
    """

    def __init__(self, raw: pa.ChunkedArray, own: pa.ChunkedArray, wrapped: np.ndarray) -> None:
        self._raw = raw
        self._own = own
        self._wrapped = wrapped

    @classmethod
    def from_cells(cls, values: list[Any], raw: pa.Array | None = None) -> JSONObjectArray:
        """From Python values (None = missing), or `FROM_RAW` cells whose value is `data` of the `raw` text."""
        wrapped = np.fromiter((v is FROM_RAW for v in values), dtype=bool, count=len(values))
        own = pa.array([None if v is None or v is FROM_RAW else _dumps(v) for v in values], type=pa.large_string())
        if raw is None or not wrapped.any():
            raw = pa.nulls(len(values), pa.large_string())
        return cls(pa.chunked_array([raw]), pa.chunked_array([own]), wrapped)

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> JSONObjectArray:
        return cls.from_cells([None if v is None or v is pd.NA else v for v in scalars])

    @classmethod
    def _from_factorized(cls, values: Any, original: Any) -> JSONObjectArray:
        return cls._from_sequence(values)

    @property
    def dtype(self) -> JSONObjectDtype:
        return JSONObjectDtype()

    @property
    def nbytes(self) -> int:
        return int(self._raw.nbytes + self._own.nbytes + self._wrapped.nbytes)

    def __len__(self) -> int:
        return len(self._wrapped)

    @staticmethod
    def _cell(raw: str | None, own: str | None, wrapped: bool) -> Any:
        if wrapped:
            value = _loads(raw) if raw is not None else None
            return value.get("data") if isinstance(value, dict) else None
        return None if own is None else _loads(own)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, (int, np.integer)):
            i = int(item)
            if i < 0:
                i += len(self)
            if not 0 <= i < len(self):
                raise IndexError(f"index {item} is out of bounds for length {len(self)}")
            w = bool(self._wrapped[i])
            return self._cell(self._raw[i].as_py() if w else None, None if w else self._own[i].as_py(), w)
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step == 1:
                n = max(stop - start, 0)
                return type(self)(self._raw.slice(start, n), self._own.slice(start, n), self._wrapped[start:stop])
            return self.take(np.arange(start, stop, step))
        item = check_array_indexer(self, item)
        if item.dtype == bool:
            return self.take(np.flatnonzero(item))
        return self.take(item)

    def __iter__(self) -> Iterator[Any]:
        # Chunk by chunk: the Python strings of one chunk at a time.
        pos = 0
        cell = self._cell
        for raw, own in zip(_rechunk(self._raw, self._own), _rechunk(self._own, self._raw)):
            n = len(raw)
            wrapped = self._wrapped[pos : pos + n].tolist()
            pos += n
            raws = raw.to_pylist() if any(wrapped) else [None] * n
            for r, o, w in zip(raws, own.to_pylist(), wrapped):
                yield cell(r, o, w)

    def isna(self) -> np.ndarray:
        own_null = self._own.is_null().to_numpy(zero_copy_only=False)
        return ~self._wrapped & own_null

    def take(self, indices: Any, *, allow_fill: bool = False, fill_value: Any = None) -> JSONObjectArray:
        idx = np.asarray(indices, dtype=np.intp)
        if allow_fill:
            if (idx < -1).any():
                raise ValueError("take: indices below -1 with allow_fill")
            missing = idx < 0
            if not len(self):
                nulls = pa.chunked_array([pa.nulls(len(idx), pa.large_string())])
                return type(self)(nulls, nulls, np.zeros(len(idx), dtype=bool))
            safe = pa.array(np.where(missing, 0, idx), mask=missing)
            wrapped = np.where(missing, False, self._wrapped[np.where(missing, 0, idx)])
            return type(self)(self._raw.take(safe), self._own.take(safe), wrapped)
        idx = np.where(idx < 0, idx + len(self), idx)
        positions = pa.array(idx)
        return type(self)(self._raw.take(positions), self._own.take(positions), self._wrapped[idx])

    def copy(self) -> JSONObjectArray:
        return type(self)(self._raw, self._own, self._wrapped.copy())  # Arrow data is immutable

    @classmethod
    def _concat_same_type(cls, to_concat: Any) -> JSONObjectArray:
        arrays = list(to_concat)
        if not arrays:
            empty = pa.chunked_array([], type=pa.large_string())
            return cls(empty, empty, np.zeros(0, dtype=bool))
        return cls(
            pa.chunked_array([c for a in arrays for c in a._raw.chunks], type=pa.large_string()),
            pa.chunked_array([c for a in arrays for c in a._own.chunks], type=pa.large_string()),
            np.concatenate([a._wrapped for a in arrays]),
        )

    def astype(self, dtype: Any, copy: bool = True) -> Any:
        if isinstance(dtype, JSONObjectDtype):
            return self.copy() if copy else self
        if pd.api.types.pandas_dtype(dtype) == np.dtype(object):
            return np.fromiter(iter(self), dtype=object, count=len(self))
        return super().astype(dtype, copy=copy)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.fromiter(iter(self), dtype=object, count=len(self))

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return np.asarray(self.json_text(), dtype=object), None

    def __arrow_array__(self, type: Any = None) -> pa.Array:
        """As Arrow: the JSON text of each cell (what `to_parquet` stores), so `df.to_parquet` and
        `pa.Table.from_pandas` work whatever shapes the objects have."""
        return pa.array(self.json_text(), type=pa.large_string())

    def json_text(self) -> list[str | None]:
        """Each cell as JSON text (None when missing): what `to_parquet` stores."""
        return [None if v is None else _dumps(v) for v in self]

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        values = np.asarray(self, dtype=object)
        return values == (other if isinstance(other, dict) else np.asarray(other, dtype=object))

    def _formatter(self, boxed: bool = False) -> Any:
        return repr


def _rechunk(a: pa.ChunkedArray, like: pa.ChunkedArray) -> Iterator[pa.Array]:
    """The pieces of `a` cut where either array has a chunk boundary, so the two can be walked together."""
    bounds = sorted(
        {0, len(a)}
        | set(np.cumsum([len(c) for c in a.chunks]).tolist())
        | set(np.cumsum([len(c) for c in like.chunks]).tolist())
    )
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            yield a.slice(lo, hi - lo).combine_chunks()
