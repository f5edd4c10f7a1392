"""rancherlab: explore, record and replay Rancher 2's WebSocket subscribe API."""

from ._version import __version__
from .protocol import Event, LegacyFrameError, ProtocolError, Watch

__all__ = ["Event", "LegacyFrameError", "ProtocolError", "Watch", "__version__"]
