"""A writer killed with SIGKILL: the file loads (tolerant mode) with every line written over a second before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rancherlab.recording import RecordingTruncatedError, RecordingWarning, read_recording

# A real process writing events in a loop; it prints the seq it has passed to write() and when.
WRITER = r"""
import sys, time
from datetime import datetime, timezone
from rancherlab.protocol import norman, parse_frame
from rancherlab.recording import RecordingHeader, RecordingWriter
from rancherlab.redaction import Redactor

path = sys.argv[1]
header = RecordingHeader("norman", "global", "https://rancher.example.com", "/v3/subscribe", Redactor(enabled=False))
writer = RecordingWriter(path, header)
seq = 0
while True:
    seq += 1
    obj = {"type": "node", "id": f"c-abc12:m-{seq:05d}", "name": "n" * 200}
    writer.write(parse_frame(norman.change_frame(obj), "norman").stamped(seq=seq, conn=0, t=seq * 0.001,
                                                                      ts=datetime.now(timezone.utc)))
    if seq % 20 == 0:
        print(seq, time.monotonic(), flush=True)
    time.sleep(0.0005)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("name", ["killed.jsonl", "killed.jsonl.gz"])
def test_sigkill_loses_at_most_the_last_second(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    progress: list[tuple[int, float]] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seq, when = line.split()
            progress.append((int(seq), float(when)))
            if progress[-1][1] - progress[0][1] > 1.6:
                break
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    written_before = max(seq for seq, when in progress if when < killed_at - 1.05)

    rec = read_recording(path, strict=False)
    with pytest.warns(RecordingWarning) if name.endswith(".gz") else _maybe_warns():
        events = list(rec)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(seqs) + 1))  # every complete line, in order, nothing invented
    assert len(seqs) >= written_before
    assert rec.summary is None and rec.skipped <= 1
    if name.endswith(".gz"):
        with pytest.raises(RecordingTruncatedError):
            list(read_recording(path))


class _maybe_warns:
    """A plain file may end exactly at a line boundary (no warning) or mid-line (one warning)."""

    def __enter__(self) -> None:
        import warnings
        self._ctx = warnings.catch_warnings(record=True)
        self._ctx.__enter__()
        warnings.simplefilter("always", RecordingWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
