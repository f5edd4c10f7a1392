"""Event frames ↔ a Parquet dataset that DuckDB, Spark, Dask and polars read without rancherlab.

`to_parquet` takes a frame or recordings (streamed in bounded batches). Layout: hive partitions `type=<type>/day=<YYYY-MM-DD>/part-*.parquet` (rows without a type, i.e. markers
and pings, go under `type=__HIVE_DEFAULT_PARTITION__`, which hive readers read as null). Nested objects do not
fit one Arrow schema across Rancher versions (types conflict, keys come and go), so `object` and `info` are
stored as JSON text; every other column keeps its Arrow type.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..protocol._json import dumps_text, loads
from ._frame import COLUMNS, SOURCE_COLUMNS, STRING, build, empty_columns
from ._load import STREAM_ROWS, iter_frames

JSON_COLUMNS: Final = ("object", "info")
PARTITIONS: Final = ("type", "day")


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return dumps_text(value)


def _loads(text: Any) -> Any:
    if text is None or text is pd.NA or (isinstance(text, float) and math.isnan(text)):
        return None
    return loads(text)


def to_parquet(
    data: pd.DataFrame | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    folder: str | Path,
    *,
    partition_by: tuple[str, ...] = PARTITIONS,
    strict: bool = True,
    batch_rows: int = STREAM_ROWS,
) -> Path:
    """Write a frame, or recordings (a path, a folder, or several), as a hive-partitioned Parquet dataset
    (by type and UTC day by default); returns the folder.

    Recordings are streamed: read in batches of `batch_rows` rows (`iter_frames`, with the `recording` and
    `scope` columns `load` adds) and written batch by batch, so memory does not grow with their size. A frame
    is written in batches of the same size. `strict` is `load`'s (damage raises, or is skipped with one
    `RecordingWarning`). Categorical columns are stored as strings; `read_parquet` restores the dtypes.
    Existing files of the partitions written are replaced, others are left alone, so a day can be re-exported.
    """
    folder = Path(folder)
    if isinstance(data, pd.DataFrame):
        frames: Iterable[pd.DataFrame] = (
            data.iloc[i : i + batch_rows] for i in range(0, max(len(data), 1), batch_rows)
        )
    else:
        frames = iter_frames(data, strict=strict, batch_rows=batch_rows)
    tables = (_arrow_table(f, partition_by) for f in frames)
    first = next(tables, None)
    if first is None:  # recordings without events: an empty dataset of the same columns
        cols = {**empty_columns(), **{c: [] for c in SOURCE_COLUMNS}}
        first = _arrow_table(build(cols), partition_by)
    schema = first.schema

    def batches() -> Iterator[pa.RecordBatch]:
        yield from first.to_batches()
        for table in tables:
            yield from table.cast(schema).to_batches()

    ds.write_dataset(
        pa.RecordBatchReader.from_batches(schema, batches()),
        folder,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([schema.field(c) for c in partition_by]), flavor="hive"),
        existing_data_behavior="delete_matching",
        max_rows_per_group=batch_rows,
        min_rows_per_group=min(batch_rows, 1024),
        use_threads=False,
    )
    folder.mkdir(parents=True, exist_ok=True)  # no rows write no file: the dataset is still there, empty
    return folder


def _arrow_table(df: pd.DataFrame, partition_by: tuple[str, ...]) -> pa.Table:
    """One batch as Arrow: JSON text for nested columns, strings for categoricals, the `day` partition."""
    out: dict[str, Any] = {}
    for c in df.columns:
        col = df[c]
        if c in JSON_COLUMNS:
            out[c] = pd.array([_dumps(v) for v in col.tolist()], dtype=STRING)
        elif isinstance(col.dtype, pd.CategoricalDtype) or c in partition_by:
            out[c] = col.astype(object).where(col.notna(), None).astype(STRING)
        else:
            out[c] = col
    if "day" in partition_by:
        out["day"] = df["time"].dt.strftime("%Y-%m-%d").astype(STRING)
    table = pa.Table.from_pandas(pd.DataFrame(out), preserve_index=False)
    # One string type for every string column, whatever pandas chose for this batch.
    return table.cast(
        pa.schema(
            pa.field(f.name, pa.large_string()) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) else f
            for f in table.schema
        )
    )


def read_parquet(folder: str | Path) -> pd.DataFrame:
    """Read a dataset written by `to_parquet` back into the frame it came from.

    The documented conversion: JSON text in `object`/`info` is parsed again, the frame's dtypes are
    restored, the `day` partition column is dropped, and rows are put back in (recording, seq) order
    with a fresh RangeIndex (partitioning scatters them).
    """
    table = ds.dataset(Path(folder), format="parquet", partitioning="hive").to_table()
    raw = table.to_pandas(types_mapper=pd.ArrowDtype)
    cols: dict[str, list[Any]] = {}
    for c in (*COLUMNS, *SOURCE_COLUMNS):
        if c not in raw:
            continue
        series = raw[c].astype(object)
        values = series.where(series.notna(), None).tolist()
        cols[c] = [_loads(v) for v in values] if c in JSON_COLUMNS else values
    frame = build(cols)
    order = ["recording", "seq"] if "recording" in frame else ["seq"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)
