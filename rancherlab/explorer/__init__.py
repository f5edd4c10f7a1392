"""The Explorer, rancherlab's Jupyter face: pick a server, a credential and a scope; watch what arrives.

`Explorer` wires the controls; `Tally` aggregates events from one `EventSource` (a live capture today);
`_render` turns what the tally holds into HTML.
"""

from __future__ import annotations

from ._explorer import Explorer
from ._source import EventSource, LiveSource
from ._tally import FieldCatalog, Tally

__all__ = ["EventSource", "Explorer", "FieldCatalog", "LiveSource", "Tally"]
