"""From events to answers: DataFrames, current state, field-level diffs, the schema catalog, plots, Parquet.

Layer 4: imports only `protocol` and `recording`. Matplotlib is used through `Figure` objects only.
"""

from .diffs import DEFAULT_IGNORE, diffs
from .flatten import flatten
from .frame import COLUMNS, frame
from .load import load
from .parquet import read_parquet, to_parquet
from .plots import plot_rate, plot_states
from .report import write_report
from .schema import event_names, json_schema, schema, schema_diff
from .state import REMOVED_STATES, state

__all__ = [
    "COLUMNS", "DEFAULT_IGNORE", "REMOVED_STATES", "diffs", "event_names", "flatten", "frame", "json_schema", "load",
    "plot_rate", "plot_states", "read_parquet", "schema", "schema_diff", "state", "to_parquet", "write_report",
]
