"""From events to answers: DataFrames, current state, field-level diffs, the schema catalog, plots, Parquet.

Layer 4: imports only `protocol` and `recording`. Matplotlib is used through `Figure` objects only.
"""

from ._diffs import DEFAULT_IGNORE, diffs
from ._flatten import flatten
from ._frame import COLUMNS, frame
from ._load import load
from ._parquet import read_parquet, to_parquet
from ._plots import plot_rate, plot_states
from ._reference import reference, reference_markdown
from ._report import write_report
from ._schema import event_names, json_schema, schema, schema_diff
from ._state import REMOVED_STATES, state
from ._typescript import typescript

__all__ = [
    "COLUMNS",
    "DEFAULT_IGNORE",
    "REMOVED_STATES",
    "diffs",
    "event_names",
    "flatten",
    "frame",
    "json_schema",
    "load",
    "plot_rate",
    "plot_states",
    "read_parquet",
    "reference",
    "reference_markdown",
    "schema",
    "schema_diff",
    "state",
    "to_parquet",
    "typescript",
    "write_report",
]
