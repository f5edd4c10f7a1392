"""Event frames ↔ a Parquet dataset that DuckDB, Spark, Dask and polars read without rancherlab.

Layout: hive partitions `type=<type>/day=<YYYY-MM-DD>/part-*.parquet` (rows without a type, i.e. markers
and pings, go under `type=__HIVE_DEFAULT_PARTITION__`, which hive readers read as null). Nested objects do not
fit one Arrow schema across Rancher versions (types conflict, keys come and go), so `object` and `info` are
stored as JSON text; every other column keeps its Arrow type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from ..protocol._json import dumps_text, loads
from ._frame import COLUMNS, build

JSON_COLUMNS: Final = ("object", "info")
PARTITIONS: Final = ("type", "day")


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return dumps_text(value)


def _loads(text: Any) -> Any:
    if text is None or text is pd.NA or (isinstance(text, float) and text != text):
        return None
    return loads(text)


def to_parquet(df: pd.DataFrame, folder: str | Path, *, partition_by: tuple[str, ...] = PARTITIONS) -> Path:
    """Write `df` as a hive-partitioned Parquet dataset (by type and UTC day by default); returns the folder.

    Existing files of the partitions written are replaced, others are left alone, so a day can be re-exported.
    """
    folder = Path(folder)
    out = df.copy()
    for c in JSON_COLUMNS:
        if c in out:
            out[c] = pd.array([_dumps(v) for v in out[c].tolist()], dtype=pd.StringDtype("pyarrow"))
    if "day" in partition_by:
        out["day"] = out["time"].dt.strftime("%Y-%m-%d").astype(pd.StringDtype("pyarrow"))
    for c in partition_by:
        out[c] = out[c].astype(pd.StringDtype("pyarrow"))
    table = pa.Table.from_pandas(out, preserve_index=False)
    schema = pa.schema([pa.field(c, pa.large_string()) for c in partition_by])
    ds.write_dataset(
        table,
        folder,
        format="parquet",
        partitioning=ds.partitioning(schema, flavor="hive"),
        existing_data_behavior="delete_matching",
    )
    return folder


def read_parquet(folder: str | Path) -> pd.DataFrame:
    """Read a dataset written by `to_parquet` back into the frame it came from.

    The documented conversion: JSON text in `object`/`info` is parsed again, the frame's dtypes are
    restored, the `day` partition column is dropped, and rows are put back in (recording, seq) order
    with a fresh RangeIndex (partitioning scatters them).
    """
    table = ds.dataset(Path(folder), format="parquet", partitioning="hive").to_table()
    raw = table.to_pandas(types_mapper=pd.ArrowDtype)
    cols: dict[str, list[Any]] = {}
    for c in (*COLUMNS, "recording"):
        if c not in raw:
            continue
        series = raw[c].astype(object)
        values = series.where(series.notna(), None).tolist()
        cols[c] = [_loads(v) for v in values] if c in JSON_COLUMNS else values
    frame = build(cols)
    order = ["recording", "seq"] if "recording" in frame else ["seq"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)
