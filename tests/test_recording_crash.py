"""A writer killed with SIGKILL: the file loads (tolerant mode) with every line written over a second before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
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
def test_sigkill_loses_at_most_the_last_second(tmp_path: Path) -> None:
    names = ["killed.jsonl", "killed.jsonl.gz"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / name)], stdout=subprocess.PIPE, text=True, env=env
        )
        for name in names
    ]
    progress: list[list[tuple[int, float]]] = [[] for _ in procs]
    try:
        deadline = time.monotonic() + 15
        for proc, seen in zip(procs, progress):  # both run at once; read each one's progress in turn
            assert proc.stdout is not None
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                seq, when = line.split()
                seen.append((int(seq), float(when)))
                if seen[-1][1] - seen[0][1] > 1.6:
                    break
        killed_at = time.monotonic()
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=10)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    for name, proc, seen in zip(names, procs, progress):
        assert proc.returncode == -signal.SIGKILL
        written_before = max(seq for seq, when in seen if when < killed_at - 1.05)
        path = tmp_path / name
        rec = read_recording(path, strict=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RecordingWarning)
            events = list(rec)
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1))  # every complete line, in order, nothing invented
        assert len(seqs) >= written_before
        assert rec.summary is None and rec.skipped <= 1 and len(caught) == rec.skipped
        if name.endswith(".gz"):
            assert rec.skipped == 1  # a killed gzip writer never wrote the stream's end
            with pytest.raises(RecordingTruncatedError):
                list(read_recording(path))
