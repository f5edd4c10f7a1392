"""The one object the Explorer's panel reads events from.

A source owns the flow of events (a live capture today; a replayed recording later, over the same
interface) and feeds every event into its `Tally`. The panel never touches sockets or files: it asks the
source whether it runs, what it has counted, how the link is, and what it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from ..capture import Capture, CaptureStats
from ..stream import Stream, StreamOptions
from ._tally import Tally


class EventSource(Protocol):
    """What the panel needs from where events come from."""

    tally: Tally

    @property
    def label(self) -> str:
        """Where the events come from, for the panel's title (no credential in it)."""
        ...

    @property
    def running(self) -> bool: ...

    @property
    def error(self) -> BaseException | None:
        """The error that ended the source, if one did."""
        ...

    def stats(self) -> CaptureStats | None: ...

    def retry_cap(self, empty_closes: int) -> float | None:
        """Longest wait (s) before the next connection attempt after that many closes without a frame."""
        ...

    def recorded(self) -> tuple[Path, int, int] | None:
        """(path, bytes on disk, events written) when the source records, else None."""
        ...

    def stop(self) -> None: ...


class LiveSource:
    """A live capture as an event source: every event it receives goes into `tally` as it arrives."""

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

    def retry_cap(self, empty_closes: int) -> float | None:
        # The stream waits a jittered back-off between 0 and this cap (see StreamOptions.backoff).
        stream = self.capture.stream
        if not isinstance(stream, Stream):
            return None
        opts: StreamOptions = stream.options
        return min(opts.backoff_max, opts.backoff_initial * opts.backoff_factor ** max(0, empty_closes))

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


__all__ = ["EventSource", "LiveSource"]
