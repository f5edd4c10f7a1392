"""Bounded memory, nothing lost: a server that floods far faster than frames are processed.

The server (benchmarks/_fastserver.py) runs in its own process and writes pre-built Norman frames as fast
as the socket takes them, each carrying its number in `seq`, so the recording can be checked frame by
frame. The memory check is tracemalloc's peak, not a timing.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

import rancherlab as rl
from rancherlab._spool import SPOOL_PREFIX
from rancherlab.recording import RecordingWarning, read_recording

from ._stream_support import FAST

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "token-flood1:Fl00dS3cretTokenValue42"
FRAME = 2048


@contextmanager
def flood(
    count: int, *, secret: str | None = None, sent_log: Path | None = None, size: int = FRAME, **extra: int
) -> Iterator[str]:
    """A flooding server in its own process; yields its URL."""
    cmd = [sys.executable, "-m", "benchmarks._fastserver", "--count", str(count), "--size", str(size)]
    if secret is not None:
        cmd += ["--secret", secret]
    if sent_log is not None:
        cmd += ["--sent-log", str(sent_log)]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _seqs(path: Path, *, strict: bool = True) -> list[int]:
    return [e.data["seq"] for e in read_recording(path, strict=strict) if e.kind == "frame" and e.is_resource]


def test_memory_stays_bounded_and_every_frame_is_recorded_in_order(tmp_path: Path) -> None:
    limit = 2 * 1024 * 1024
    size = 8 * 1024  # fewer, larger frames: the same bytes in less test time
    count = 50 * limit // size  # the server sends 50 times the backlog limit
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    options = replace(FAST, snapshot=False, backlog_bytes=limit, max_lag=None, spool_dir=str(spool_dir))
    spilled: list[int] = []

    def watch_spool(event: rl.Event) -> None:
        if event.kind == "frame" and event.data["seq"] % 250 == 0:
            spilled.append(sum(p.stat().st_size for p in spool_dir.iterdir()))

    with flood(count, size=size, objects=20) as url:
        # A warm-up capture through a tiny backlog loads every module the real one will (websockets, REST,
        # the spool's cipher), so the traced peak counts memory the backlog holds, not code first imported.
        warm = rl.capture(
            url,
            "global",
            credentials=TOKEN,
            env={},
            cli_config=False,
            options=replace(options, backlog_bytes=64 * 1024, spool_dir=str(tmp_path)),
            record=tmp_path / "warm.jsonl",
            count=2000,
            max_events=10,
        )
        assert warm.wait(60)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            cap = rl.capture(
                url,
                "global",
                credentials=TOKEN,
                env={},
                cli_config=False,
                options=options,
                record=tmp_path / "flood.jsonl",
                count=count,
                max_events=10,  # the window of recent events is the caller's choice, not backlog
                on_event=watch_spool,
            )
            assert cap.wait(150), "the capture did not finish"
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert cap.stats.state == "done"
    assert _seqs(tmp_path / "flood.jsonl") == list(range(1, count + 1))  # every frame, in order
    assert max(spilled) > limit  # the backlog outgrew the limit: it waited on disk
    print(f"traced peak {peak / 1e6:.1f} MB, spool file up to {max(spilled) / 1e6:.1f} MB")
    assert peak < 2 * limit, f"traced peak {peak / 1e6:.1f} MB for a {limit / 1e6:.1f} MB backlog limit"
    assert list(spool_dir.iterdir()) == []  # the spool file is gone with its connection


def test_no_spool_file_holds_a_secret(tmp_path: Path) -> None:
    count = 4_000
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    options = replace(FAST, snapshot=False, backlog_bytes=1024 * 1024, max_lag=None, spool_dir=str(spool_dir))
    secret_half = TOKEN.split(":")[1].encode()
    seen: list[int] = []
    found: list[str] = []

    def search_spool(event: rl.Event) -> None:
        if event.kind == "frame" and event.data["seq"] % 200 == 0:
            for p in spool_dir.iterdir():
                data = p.read_bytes()
                seen.append(len(data))
                if secret_half in data or b"Fl00d" in data or b"password" in data:
                    found.append(p.name)

    with flood(count, secret=TOKEN, secret_every=3, size=8 * 1024, objects=20) as url:
        cap = rl.capture(
            url,
            "global",
            credentials=TOKEN,  # the server's frames hold the credential itself, and secrets with it as value
            env={},
            cli_config=False,
            options=options,
            record=tmp_path / "secret.jsonl",
            count=count,
            max_events=50,
            on_event=search_spool,
        )
        assert cap.wait(150)
    assert seen and max(seen) > 1024 * 1024 and all(name.startswith(SPOOL_PREFIX) for name in found)
    assert found == []
    text = (tmp_path / "secret.jsonl").read_bytes()
    assert secret_half not in text and b"<redacted len=" in text
    assert _seqs(tmp_path / "secret.jsonl") == list(range(1, count + 1))


def _unread_bytes(port: int) -> int:
    """Bytes the server has written to its socket that the client has not read yet: the server side's send
    queue plus the client side's receive queue (Linux's /proc/net/tcp, established connections)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[3]
        tx, rx = (int(x, 16) for x in fields[4].split(":"))
        if state == "01" and local == port:
            total += tx
        elif state == "01" and remote == port:
            total += rx
    return total


def _last_sent(log: Path) -> int:
    lines = log.read_text().splitlines()
    return int(lines[-1].split()[0]) if lines else 0


def test_kill_9_under_a_flood_loses_nothing_read_a_second_before(tmp_path: Path) -> None:
    out = tmp_path / "killed.jsonl.gz"
    sent_log = tmp_path / "sent.log"
    size = 32 * 1024
    # large frames into a gzip recording: the writer is the slowest stage, so a backlog would build up behind it
    with flood(10_000_000, secret=TOKEN, secret_every=50, size=size, sent_log=sent_log, sndbuf=64 * 1024) as url:
        port = int(url.rsplit(":", 1)[1])
        proc = subprocess.Popen(
            [sys.executable, "-m", "rancherlab", "record", "--url", url, "--scope", "global", "--token", TOKEN]
            + ["--no-snapshot", "--quiet", "--out", str(out)],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("RANCHER_")},
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 500_000):
                time.sleep(0.05)
            time.sleep(0.5)  # flooding all along
            # What the client had read one second before the kill: what the server had written, less what was
            # still in the kernel's buffers, less what websockets may hold (16 messages and one 256 KiB read).
            read_at = time.monotonic()
            read = _last_sent(sent_log) - math.ceil(_unread_bytes(port) / (size + 4)) - 24
            time.sleep(max(0.0, read_at + 1.0 - time.monotonic()))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert read > 50
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)  # the kill may cut the last line
        events = list(read_recording(out, strict=False))
    seqs = [e.data["seq"] for e in events if e.kind == "frame" and e.is_resource]
    assert seqs[:read] == list(range(1, read + 1)), f"lost frames among the {read} read a second before the kill"
    assert not any(TOKEN.split(":")[1] in (e.raw or "") for e in events)  # redacted
    assert any("redacted len=" in (e.raw or "") for e in events)
    print(f"{len(seqs)} frames recorded; {read} had been read a second before the kill")


def test_replay_source_reads_at_any_speed_in_order(tmp_path: Path) -> None:
    """The recording of a flood replays through Capture as fast as it reads (speed=inf)."""
    path = tmp_path / "small.jsonl"
    with flood(3000, objects=20) as url:
        cap = rl.capture(
            url,
            "global",
            credentials=TOKEN,
            env={},
            cli_config=False,
            options=replace(FAST, snapshot=False),
            record=path,
            count=3000,
        )
        assert cap.wait(60)
    again = rl.capture_recording(path, speed=math.inf, max_events=10_000)
    assert again.wait(60)
    assert [e.data["seq"] for e in again.events if e.kind == "frame"] == list(range(1, 3001))
