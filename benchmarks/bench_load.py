"""Analysis of big recordings: `rancherlab schema` and `rl.to_parquet` stream, `rl.load` holds each event once.

Four rows, each printed with its target:

* `rancherlab schema` of a 1 GB recording: peak RSS (target <= 300 MB);
* `rl.to_parquet` of the same 1 GB recording: peak RSS (target <= 500 MB);
* `rl.load` of a 200 MB recording: peak RSS / size on disk (target <= 3x);
* `rl.load` time / pyarrow's C++ JSON reader doing the same two-level parse (the event lines, then the frame
  texts inside them) on the same 100 MB recording, alternating runs, medians (target <= 0.7x).

Each measured command runs in its own process; its peak RSS is the kernel's (wait4), interpreter and imports
included. The recordings are generated with a fixed seed (benchmarks/_recordings.py): a 100 MB block of Steve
pod and deployment changes, repeated to make the larger files. `schema` and `to_parquet` run side by side.

    python benchmarks/bench_load.py        (RANCHERLAB_BENCH_MB=1000 sets the big recording's size)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._recordings import write_recording

MB = 1_000_000
BLOCK = 100 * MB

LOAD = """
import sys
import rancherlab as rl
df = rl.load(sys.argv[1], progress=False)
print(len(df))
"""
PARQUET = """
import sys
import rancherlab as rl
rl.to_parquet(sys.argv[1], sys.argv[2])
"""
TIMING = """
import statistics, sys, time
import pyarrow.json as pj
import rancherlab as rl
path, lines, frames, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ours, arrow = [], []
for _ in range(runs):
    t = time.perf_counter(); rl.load(path, progress=False); ours.append(time.perf_counter() - t)
    t = time.perf_counter(); pj.read_json(lines); pj.read_json(frames); arrow.append(time.perf_counter() - t)
print(statistics.median(ours), statistics.median(arrow))
"""


STARTED: dict[int, float] = {}


def start(args: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    STARTED[proc.pid] = time.perf_counter()
    return proc


def finish(proc: subprocess.Popen[bytes], what: str) -> tuple[float, int, bytes]:
    """(seconds, peak RSS in bytes, stdout) of a started process, from the kernel's accounting."""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - STARTED[proc.pid]
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, out


GENERATE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks.bench_load import build, pyarrow_inputs
folder = Path(sys.argv[2])
block, mid, big = build(folder, int(sys.argv[3]))
pyarrow_inputs(block, folder)
"""


def build(folder: Path, big_mb: int) -> tuple[Path, Path, Path]:
    """The 100 MB block, a 200 MB and a `big_mb` recording made of it (header once, then the block's lines)."""

    block = folder / "block.jsonl"
    write_recording(block, BLOCK)
    header, *body = block.read_bytes().splitlines(keepends=True)
    lines = b"".join(body[:-1])  # without the summary
    out = []
    for name, size in (("mid.jsonl", 200 * MB), ("big.jsonl", big_mb * MB)):
        path = folder / name
        with open(path, "wb") as f:
            f.write(header)
            written = len(header)
            while written < size:
                written += f.write(lines)
        out.append(path)
    return block, out[0], out[1]


def pyarrow_inputs(block: Path, folder: Path) -> tuple[Path, Path]:
    """The block's event lines (one schema for pyarrow: no header, no summary) and its frame texts, one a line."""
    import pyarrow.json as pj

    lines = folder / "lines.jsonl"
    lines.write_bytes(b"".join(block.read_bytes().splitlines(keepends=True)[1:-1]))
    raw = pj.read_json(lines).column("raw").to_pylist()
    frames = folder / "frames.jsonl"
    # Norman ends a frame with "\n}"; JSON lines cannot hold a newline, and it is only whitespace.
    frames.write_text("".join(r.replace("\n", " ") + "\n" for r in raw), encoding="utf-8")
    return lines, frames


def row(figure: str, value: str, target: str, met: bool) -> None:
    print(f"| {figure} | {value} | {target} | {'met' if met else 'NOT MET'} |", flush=True)


def main() -> None:
    big_mb = int(os.environ.get("RANCHERLAB_BENCH_MB", "1000"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        # Generated in a child: this process stays small, so the children it forks start small (their peak
        # RSS would otherwise include this process's memory, copied at fork).
        finish(start(["-c", GENERATE, str(ROOT), str(folder), str(big_mb)]), "generating recordings")
        block, mid, big = (folder / n for n in ("block.jsonl", "mid.jsonl", "big.jsonl"))
        lines, frames = folder / "lines.jsonl", folder / "frames.jsonl"
        print(
            f"generated {big.stat().st_size / MB:,.0f} MB + {mid.stat().st_size / MB:,.0f} MB in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        schema = start(["-m", "rancherlab", "schema", str(big), "--out", str(folder / "ref.md")])
        parquet = start(["-c", PARQUET, str(big), str(folder / "parquet")])
        s_time, s_rss, _ = finish(schema, "rancherlab schema")
        p_time, p_rss, _ = finish(parquet, "rl.to_parquet")
        _, l_rss, _ = finish(start(["-c", LOAD, str(mid)]), "rl.load")
        _, _, out = finish(start(["-c", TIMING, str(block), str(lines), str(frames), "3"]), "timing")
        ours, arrow = (float(x) for x in out.split())
        size_gb, mid_size = big.stat().st_size / 1e9, mid.stat().st_size
    print("| figure | measured | target | |")
    print("|---|---|---|---|")
    row(
        f"`rancherlab schema` of a {size_gb:.1f} GB recording: peak RSS",
        f"{s_rss / MB:.0f} MB ({s_time:.0f} s)",
        "<= 300 MB",
        s_rss <= 300 * MB,
    )
    row(
        f"`rl.to_parquet` of a {size_gb:.1f} GB recording: peak RSS",
        f"{p_rss / MB:.0f} MB ({p_time:.0f} s)",
        "<= 500 MB",
        p_rss <= 500 * MB,
    )
    ratio = l_rss / mid_size
    row(
        "`rl.load`: peak RSS / recording size on disk",
        f"{ratio:.1f}x ({l_rss / MB:.0f} MB for {mid_size / MB:.0f} MB)",
        "<= 3x",
        ratio <= 3,
    )
    row(
        "`rl.load` time / pyarrow reading the same lines and frames",
        f"{ours / arrow:.2f}x ({ours:.2f} s vs {arrow:.2f} s, medians of 3)",
        "<= 0.7x",
        ours / arrow <= 0.7,
    )


if __name__ == "__main__":
    main()
