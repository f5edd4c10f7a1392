"""Capture against a flooding server: `rancherlab record`'s peak RSS and rate, and replay's rate.

Three rows, each against a baseline measured in the same run:

* `rancherlab record --count N` of an N x 2 KB burst: peak RSS (target <= 300 MB) and frames recorded (all);
* capture rate / the rate of a bare websockets loop that appends each frame to a file (same server,
  alternating runs, medians; target >= 0.90 or the README names what bounds it);
* `rl.replay(speed=inf)` of the recording / reading and orjson-parsing its lines (target >= 0.8).

Every client runs in its own process, timed from the first frame to the last, with its peak RSS taken
from the kernel (wait4). The server (benchmarks/_fastserver.py) runs in another process.

    python benchmarks/bench_capture.py [FRAMES] [RUNS]     (default 200,000 frames, 3 runs)
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "token-bench:Bench5ecretValue0000"

BARE = r"""
import asyncio, sys, time
from websockets.asyncio.client import connect

async def main(url, out, count):
    async with connect(url, max_size=None, ping_interval=None) as ws:
        with open(out, "w") as f:
            n = 0
            async for msg in ws:
                if n == 0:
                    t0 = time.perf_counter()
                f.write(msg)
                f.write("\n")
                n += 1
                if n == count:
                    break
            f.flush()
    print(f"{n} {time.perf_counter() - t0:.6f}")

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

REPLAY = r"""
import math, sys, time, orjson
import rancherlab as rl
path = sys.argv[1]
def baseline():
    n = 0
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
    return n
def ours():
    n = 0
    for _ in rl.replay(path, speed=math.inf):
        n += 1
    return n
times = {"orjson": [], "replay": []}
for _ in range(int(sys.argv[2])):
    for name, fn in (("orjson", baseline), ("replay", ours)):
        t = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t)
print(min(times["orjson"]), min(times["replay"]))
"""


def stage_costs(count: int = 20_000, size: int = 2048) -> dict[str, float]:
    """CPU microseconds per frame of each step `rancherlab record` takes after a frame arrives, in this process.

    The same frames as the server sends, through the same functions the stream and the writer call: the frame
    rule (`parse_frame`), redaction with the credential in use, stamping, encoding the recording line (with its
    frame fields and object summary) and writing it to a file.
    """
    from datetime import UTC, datetime

    from benchmarks._fastserver import frame_text
    from rancherlab.protocol.frames import parse_frame
    from rancherlab.recording import encode_event
    from rancherlab.redaction import Redactor

    texts = [frame_text(i + 1, size) for i in range(count)]
    redactor = Redactor(credentials=[TOKEN])
    now = datetime.now(UTC)
    costs: dict[str, float] = {}

    def stage(name: str, fn: Any, items: list[Any]) -> list[Any]:
        gc.collect()
        gc.disable()  # the kept results would make collections rescan them: not a cost the stream pays
        try:
            start = time.process_time()
            out = [fn(x) for x in items]
            costs[name] = (time.process_time() - start) / count * 1e6
        finally:
            gc.enable()
        return out

    events = stage("parse", lambda t: parse_frame(t, "norman", max_bytes=64 * 1024 * 1024), texts)
    events = stage("redact", redactor.redact, events)
    events = stage("stamp", lambda e: e.stamped(seq=1, conn=1, t=0.5, ts=now), events)
    lines = stage("encode", encode_event, events)
    with tempfile.TemporaryFile() as f:
        stage("write", f.write, lines)
    return costs


def start_server(count: int, size: int = 2048) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._fastserver", "--count", str(count), "--size", str(size)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.split()[1])


def run(cmd: list[str]) -> tuple[str, float, int]:
    """(stdout, CPU seconds, peak RSS bytes) of one client process."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}")
    return text, cpu, usage.ru_maxrss * 1024


def record(port: int, out: Path, count: int) -> tuple[float, float, int, int]:
    """(seconds from first frame to last, CPU seconds, peak RSS, frames recorded) of `rancherlab record`."""
    from rancherlab.recording import read_recording

    cmd = [
        sys.executable,
        "-m",
        "rancherlab",
        "record",
        "--url",
        f"http://127.0.0.1:{port}",
        "--scope",
        "global",
        "--token",
        TOKEN,
        "--no-snapshot",
        "--count",
        str(count),
        "--overwrite",
        "--quiet",
        "--out",
        str(out),
    ]
    _, cpu, rss = run(cmd)
    # streamed, never held: this process's memory would show in the next child's RSS (fork copies it)
    first = last = None
    n = 0
    in_order = True
    for e in read_recording(out):
        if e.kind == "frame":
            first = e.t if first is None else first
            last = e.t
            if e.name == "resource.change":
                n += 1
                in_order = in_order and e.data["seq"] == n
    assert first is not None and last is not None
    return last - first, cpu, rss, n if in_order else -1


def bare(port: int, out: Path, count: int) -> tuple[float, float]:
    """(seconds from first frame to last, CPU seconds) of the bare websockets loop."""
    text, cpu, _ = run([sys.executable, "-c", BARE, f"ws://127.0.0.1:{port}/v3/subscribe", str(out), str(count)])
    n, seconds = text.split()
    assert int(n) == count
    return float(seconds), cpu


def main(count: int = 200_000, runs: int = 3) -> None:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "burst.jsonl"
        server, port = start_server(count)
        try:
            ours: list[float] = []
            theirs: list[float] = []
            our_cpu: list[float] = []
            their_cpu: list[float] = []
            rss: list[int] = []
            recorded: list[int] = []
            for _ in range(runs):
                seconds, cpu = bare(port, Path(tmp) / "bare.txt", count)
                theirs.append(seconds)
                their_cpu.append(cpu)
                seconds, cpu, peak, frames = record(port, rec, count)
                ours.append(seconds)
                our_cpu.append(cpu)
                rss.append(peak)
                recorded.append(frames)
        finally:
            server.kill()
            server.wait()
        bare_rate = count / statistics.median(theirs)
        our_rate = count / statistics.median(ours)
        rows.append(
            (
                f"`rancherlab record`, {count:,} x 2 KB burst: peak RSS, frames recorded",
                f"{max(rss) / 1e6:.0f} MB, {min(recorded):,} of {count:,} in order",
                "<= 300 MB, all",
            )
        )
        rows.append(
            (
                "capture rate / bare websockets loop rate",
                f"{our_rate / bare_rate:.2f} ({our_rate:,.0f} / {bare_rate:,.0f} frames/s)",
                ">= 0.90",
            )
        )
        rows.append(
            (
                "  the same in CPU time per frame (bare / record)",
                (
                    f"{statistics.median(their_cpu) / statistics.median(our_cpu):.2f} "
                    f"({statistics.median(our_cpu) / count * 1e6:.1f} / "
                    f"{statistics.median(their_cpu) / count * 1e6:.1f} us per frame, startup included)"
                ),
                "(explains the row above)",
            )
        )
        costs = stage_costs()
        rows.append(
            (
                "  CPU per frame of each step after it arrives",
                ", ".join(f"{k} {v:.1f}" for k, v in costs.items()) + f" us (sum {sum(costs.values()):.1f})",
                "(what bounds capture)",
            )
        )
        text, _, _ = run([sys.executable, "-c", REPLAY, str(rec), "2"])
        base, replayed = (float(x) for x in text.split())
        rows.append(
            (
                "`rl.replay(speed=inf)` / orjson read+parse",
                f"{base / replayed:.2f} ({count / replayed:,.0f} / {count / base:,.0f} lines/s)",
                ">= 0.8",
            )
        )
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<44}  target {target}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
