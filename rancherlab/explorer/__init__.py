"""The Explorer, rancherlab's Jupyter face: pick a server, a credential and a scope; watch what arrives.

`Explorer` wires the controls; `Tally` aggregates events from one `PanelSource` (a live capture, `LiveSource`,
or a replayed recording, `RecordingSource`); `_render` turns what the tally holds into HTML.
"""

from __future__ import annotations

from ._explorer import Explorer
from ._source import LiveSource, PanelSource, RecordingSource
from ._tally import FieldCatalog, Tally

__all__ = ["Explorer", "FieldCatalog", "LiveSource", "PanelSource", "RecordingSource", "Tally"]
