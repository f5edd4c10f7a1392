"""The public API is pinned: a change to it is a decision, made here on purpose."""

from __future__ import annotations

import subprocess
import sys

import rancherlab as rl

PUBLIC = [
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


def test_all_is_pinned():
    assert rl.__all__ == sorted(PUBLIC)


def test_every_public_name_resolves():
    for name in rl.__all__:
        assert getattr(rl, name) is not None, name


def test_import_is_light():
    """The CLI and recording subprocesses must not pay for pandas, matplotlib or ipywidgets."""
    code = "import sys, rancherlab, rancherlab.cli; print(sorted(m for m in ('pandas', 'matplotlib', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_functions_named_like_their_modules_stay_functions():
    import rancherlab.capture
    import rancherlab.replay  # noqa: F401

    assert callable(rl.capture) and callable(rl.replay)
    assert rl.capture.__module__ == "rancherlab.capture" and rl.replay.__module__ == "rancherlab.replay"
