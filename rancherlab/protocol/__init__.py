"""The sans-I/O protocol core: frame text in, `Event`s out; subscription messages out. No sockets, no asyncio."""

from . import auth, norman, objects, steve, watch
from .errors import LegacyFrameError, ProtocolError
from .event import (
    ANOMALY,
    CONNECTED,
    DEFAULT_MAX_FRAME_BYTES,
    DIALECTS,
    DISCONNECTED,
    KINDS,
    MARKERS,
    RESOURCE_EVENTS,
    RESYNC_FINISHED,
    RESYNC_STARTED,
    WATCH_STOPPED,
    Dialect,
    Event,
    Kind,
    marker,
)
from .frames import decode_frame, parse_frame, parse_sent
from .gojson import go_json
from .steve import Watch, subscription_key

__all__ = [
    "ANOMALY",
    "CONNECTED",
    "DEFAULT_MAX_FRAME_BYTES",
    "DIALECTS",
    "DISCONNECTED",
    "KINDS",
    "MARKERS",
    "RESOURCE_EVENTS",
    "RESYNC_FINISHED",
    "RESYNC_STARTED",
    "WATCH_STOPPED",
    "Dialect",
    "Event",
    "Kind",
    "LegacyFrameError",
    "ProtocolError",
    "Watch",
    "auth",
    "decode_frame",
    "go_json",
    "marker",
    "norman",
    "objects",
    "parse_frame",
    "parse_sent",
    "steve",
    "subscription_key",
    "watch",
]
