"""rancherlab: explore, record and replay Rancher 2's WebSocket subscribe API.

`import rancherlab as rl` is cheap: names resolve on first use (PEP 562), so the CLI and a recording
subprocess do not pay for pandas, matplotlib or ipywidgets unless they touch the analysis or the widget.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# These share their module's name; binding them eagerly keeps `rl.capture` / `rl.replay` the functions
# even after some code imports the submodules `rancherlab.capture` / `rancherlab.replay`.
from .capture import capture
from .replay import replay

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # one Event model and the protocol's own values
    "Event": "protocol",
    "Watch": "protocol",
    "ProtocolError": "protocol",
    "LegacyFrameError": "protocol",
    # where and how to connect
    "Scope": "scope",
    "Credentials": "credentials",
    # live streams
    "subscribe": "stream",
    "StreamOptions": "stream",
    "capture": "capture",
    "Capture": "capture",
    # any source of events through a Capture: a live stream, or a recording replayed at a speed
    "EventSource": "source",
    "capture_recording": "capture",
    # recordings and replay
    "RecordingHeader": "recording",
    "RecordingWriter": "recording",
    "Recording": "recording",
    "read_recording": "recording",
    "RecordingError": "recording",
    "Redactor": "redaction",
    "replay": "replay",
    "areplay": "replay",
    "import_har": "har",
    # analysis
    "frame": "analysis",
    "load": "analysis",
    "flatten": "analysis",
    "state": "analysis",
    "diffs": "analysis",
    "schema": "analysis",
    "schema_diff": "analysis",
    "plot_rate": "analysis",
    "plot_states": "analysis",
    "to_parquet": "analysis",
    "read_parquet": "analysis",
    "write_report": "analysis",
    # faces and servers
    "Explorer": "explorer",
    "Simulator": "simulator",
    "ReplayServer": "replayserver",
    # errors that teach
    "RancherlabError": "errors",
    "AuthenticationError": "errors",
    "PermissionDeniedError": "errors",
    "NotFoundError": "errors",
    "UnknownTypeError": "errors",
    "ClusterNotFound": "errors",
    "TLSError": "errors",
    "ConnectGaveUpError": "errors",
    "UsageError": "errors",
}

__all__ = [  # pinned by tests/test_public_api.py; every name but __version__ resolves through _EXPORTS
    "AuthenticationError",
    "Capture",
    "ClusterNotFound",
    "ConnectGaveUpError",
    "Credentials",
    "Event",
    "EventSource",
    "Explorer",
    "LegacyFrameError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RancherlabError",
    "Recording",
    "RecordingError",
    "RecordingHeader",
    "RecordingWriter",
    "Redactor",
    "ReplayServer",
    "Scope",
    "Simulator",
    "StreamOptions",
    "TLSError",
    "UnknownTypeError",
    "UsageError",
    "Watch",
    "__version__",
    "areplay",
    "capture",
    "capture_recording",
    "diffs",
    "flatten",
    "frame",
    "import_har",
    "load",
    "plot_rate",
    "plot_states",
    "read_parquet",
    "read_recording",
    "replay",
    "schema",
    "schema_diff",
    "state",
    "subscribe",
    "to_parquet",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rancherlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .analysis import (
        diffs,
        flatten,
        frame,
        load,
        plot_rate,
        plot_states,
        read_parquet,
        schema,
        schema_diff,
        state,
        to_parquet,
        write_report,
    )
    from .capture import Capture, capture, capture_recording
    from .credentials import Credentials
    from .errors import (
        AuthenticationError,
        ClusterNotFound,
        ConnectGaveUpError,
        NotFoundError,
        PermissionDeniedError,
        RancherlabError,
        TLSError,
        UnknownTypeError,
        UsageError,
    )
    from .explorer import Explorer
    from .har import import_har
    from .protocol import Event, LegacyFrameError, ProtocolError, Watch
    from .recording import Recording, RecordingError, RecordingHeader, RecordingWriter, read_recording
    from .redaction import Redactor
    from .replay import areplay, replay
    from .replayserver import ReplayServer
    from .scope import Scope
    from .simulator import Simulator
    from .source import EventSource
    from .stream import StreamOptions, subscribe
