"""What the Explorer's panel reads from: a `PanelSource`, a running `Capture` seen from the panel.

The capture consumes an event source of the receive path (`rancherlab.source.EventSource`: a live `Stream` or
a `ReplaySource`) and feeds every event into the panel's `Tally`. The panel never touches sockets or files: it
asks its `PanelSource` whether it runs, what it has counted, how the link is, when the next connection attempt
is and what it wrote. `LiveSource` is a live capture; `RecordingSource` is a recording replayed at a chosen
speed through the same `Capture` (`rancherlab.capture_recording`), so counts, last events, event detail, schema
and object views work the same on both.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Protocol

from ..capture import Capture, CaptureStats, capture_recording
from ..stream import Stream
from ._tally import Tally


class PanelSource(Protocol):
    """What the panel needs from where its events come from (not `rancherlab.source.EventSource`, which is
    what a `Capture` consumes: a panel source wraps the capture of one)."""

    tally: Tally
    capture: Capture

    @property
    def label(self) -> str:
        """Where the events come from, for the panel (no credential in it)."""
        ...

    @property
    def live(self) -> bool:
        """True for a live server (connections, back-off), False for a replayed recording."""
        ...

    @property
    def running(self) -> bool: ...

    @property
    def error(self) -> BaseException | None:
        """The error that ended the source, if one did."""
        ...

    def stats(self) -> CaptureStats | None: ...

    def retry_at(self) -> float | None:
        """When (`time.monotonic()` s) the next connection attempt starts while the source waits; else None."""
        ...

    def recorded(self) -> tuple[Path, int, int] | None:
        """(path, bytes on disk, events written) when the source records, else None."""
        ...

    def stop(self) -> None: ...


class _CaptureSource:
    """A `Capture` whose every event goes into `tally` as it arrives (the capture's `on_event` sink)."""

    live = True

    def __init__(self, capture: Capture, tally: Tally) -> None:
        self.capture = capture
        self.tally = tally

    @property
    def label(self) -> str:
        return self.capture.stream.endpoint  # the subscribe URL: a credential never goes into it

    @property
    def running(self) -> bool:
        return self.capture.running

    @property
    def error(self) -> BaseException | None:
        return self.capture.error

    def stats(self) -> CaptureStats:
        return self.capture.stats

    def retry_at(self) -> float | None:
        return None

    def recorded(self) -> tuple[Path, int, int] | None:
        path = self.capture.record_path
        if path is None:
            return None
        try:
            size = os.stat(path).st_size
        except OSError:
            size = 0
        return path, size, self.capture.stats.recorded

    def stop(self) -> None:
        self.capture.stop()


class LiveSource(_CaptureSource):
    """A live capture (`rancherlab.capture`) as the panel's source."""

    def retry_at(self) -> float | None:
        # The stream tells the delay it drew from its jittered back-off (`Stream.next_attempt_at`).
        stream = self.capture.stream
        return stream.next_attempt_at if isinstance(stream, Stream) else None


class RecordingSource(_CaptureSource):
    """A recording replayed through a `Capture` at `speed` times its recorded pace, as the panel's source.

    `path` is a recording file or folder; `speed` > 0 (`math.inf`: as fast as it can be read). Raises like
    `rancherlab.capture_recording` (`FileNotFoundError`, `RecordingError`, `UsageError` for a bad speed).
    `record` writes what is replayed to a new recording too.
    """

    live = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        speed: float,
        tally: Tally,
        *,
        record: str | os.PathLike[str] | None = None,
        idle_cap: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.speed = speed
        super().__init__(capture_recording(path, speed, idle_cap=idle_cap, record=record, on_event=tally.add), tally)

    @property
    def label(self) -> str:
        pace = "as fast as it can be read" if math.isinf(self.speed) else f"at ×{self.speed:g}"
        return f"recording {self.path} {pace}"


__all__ = ["LiveSource", "PanelSource", "RecordingSource"]
