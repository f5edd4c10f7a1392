"""The Explorer attached to a capture at 5,000 events/s: is every event recorded, does the panel stay at
<= 10 updates per second per widget, and does a trivial cell still answer within 100 ms?

A real ipykernel runs the Explorer (as in JupyterLab); this script is its client. A fast Norman server (its
own loop, pre-built frames, paced in 10 ms slices) sends `resource.change` frames numbered 0..N-1; the
Explorer connects to it, records, and its panel redraws on its timer. Meanwhile the client runs `1 + 1` cells
and times each reply, and counts the widget updates the kernel sends on iopub, per widget. At the end the
recording is read back and every number must be in it. The same capture without the Explorer runs first, as
the baseline: what the Explorer adds is the difference. The cell target is judged on the 90th percentile (worst
printed too): on a busy machine the baseline's own tail passes 100 ms now and then.

    python benchmarks/bench_explorer.py [SECONDS] [RATE]   (default 10 s at 5,000 events/s)
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Self

from jupyter_client.manager import start_new_kernel
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from rancherlab._loop import LoopThread
from rancherlab._wsserver import http_response, is_upgrade
from rancherlab.protocol import norman
from rancherlab.recording import read_recording
from rancherlab.simulator import generate_token

TOKEN = generate_token()  # made at run time: the fast server does not check it
SLICE = 0.01  # seconds between bursts
REST = {
    "/v3/clusters": [{"id": "local", "name": "local", "type": "cluster"}],
    "/v3/projects": [],
    "/v3/schemas": [{"id": "pod", "type": "schema", "collectionMethods": ["GET"]}],
}


def pod(n: int) -> dict:
    name = f"web-{n % 500}"
    return {
        "id": f"default:{name}",
        "type": "pod",
        "baseType": "pod",
        "name": name,
        "namespaceId": "default",
        "projectId": "c-bench:p-bench",
        "state": "running",
        "transitioning": "no",
        "n": n,
        "labels": {"app": "web", "pod-template-hash": "64d85666f9"},
        "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}],
        "nodeId": "c-bench:m-node1",
        "metadata": {"resourceVersion": str(1000 + n)},
    }


class FastNorman:
    """Sends `total` numbered pod changes at `rate` per second to each subscriber, then only pings."""

    def __init__(self, total: int, rate: float) -> None:
        self.frames = [norman.change_frame(pod(n)) for n in range(total)]
        self.rate = rate
        self.sent = 0
        self.done = threading.Event()
        self.started = threading.Event()
        self.runner = LoopThread("bench-fast-norman")
        self.port = 0

    def _rest(self, _conn: ServerConnection, request: Request) -> Response | None:
        """Just the REST answers the Explorer's Connect reads: one cluster, no project, the pod schema."""
        if is_upgrade(Headers(request.headers)):
            return None
        path = request.path.split("?", 1)[0]
        body = REST.get(path)
        if body is None:
            return http_response(404, '{"type":"error","status":404,"message":"not here"}')
        return http_response(200, json.dumps({"type": "collection", "data": body}))

    async def _handler(self, ws: ServerConnection) -> None:
        self.started.set()
        start = time.monotonic()
        frames, sent = self.frames, 0
        while sent < len(frames):
            due = min(len(frames), int((time.monotonic() - start) * self.rate))
            for text in frames[sent:due]:
                await ws.send(text)
            sent = max(sent, due)
            self.sent = sent
            await asyncio.sleep(SLICE)
        self.done.set()
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(norman.PING)
                await asyncio.sleep(1.0)

    async def _start(self) -> None:
        self.server = await serve(self._handler, "127.0.0.1", 0, process_request=self._rest, max_size=None)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    def __enter__(self) -> Self:
        self.runner.start()
        self.runner.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.call(self._stop())
        self.runner.stop()


class Kernel:
    """A real ipykernel; iopub is read on a thread that counts widget updates per widget (comm id)."""

    def __init__(self) -> None:
        self.km, self.kc = start_new_kernel(kernel_name="python3")
        self.updates: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if msg["msg_type"] == "comm_msg" and msg["content"]["data"].get("method") == "update":
                self.updates.append((time.monotonic(), msg["content"]["comm_id"]))

    def run(self, code: str, expr: str | None = None, timeout: float = 60) -> tuple[float, object]:
        """Execute a cell; (seconds until its reply, the value of `expr` as JSON)."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code, user_expressions={"r": expr} if expr else None)
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.perf_counter() - start
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"cell failed: {content.get('ename')}: {content.get('evalue')}")
        value = None
        if expr:
            r = content["user_expressions"]["r"]
            if r["status"] != "ok":
                raise RuntimeError(f"expression failed: {r.get('ename')}: {r.get('evalue')}")
            value = json.loads(ast.literal_eval(r["data"]["text/plain"]))
        return elapsed, value

    def close(self) -> None:
        self._stop.set()
        self._reader.join(2)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def run(explorer: bool, seconds: float, rate: float) -> dict[str, Any]:
    """One capture at `rate` for `seconds` in a fresh kernel, with the Explorer attached or without it."""
    total = int(seconds * rate)
    with tempfile.TemporaryDirectory(prefix="rancherlab-bench-explorer-") as tmp, FastNorman(total, rate) as server:
        record = Path(tmp) / "capture.jsonl"
        url = f"http://127.0.0.1:{server.port}"
        kernel = Kernel()
        try:
            if explorer:
                kernel.run(
                    "import rancherlab as rl\n"
                    f"ex = rl.Explorer('{url}/v3/subscribe', {TOKEN!r}, env={{}}, cli_config=False, snapshot=False, "
                    f"resync=False)\nex.record_toggle.value = True\nex.record_path.value = {str(record)!r}\nex.widget"
                )
                start, stop, cap = "ex.start()", "ex.stop()", "ex.capture"
            else:
                kernel.run("import rancherlab as rl")
                start = (
                    f"cap = rl.capture({url!r}, 'global', credentials={TOKEN!r}, env={{}}, cli_config=False, "
                    f"snapshot=False, resync=False, record={str(record)!r})"
                )
                stop, cap = "cap.stop()", "cap"
            _, cpu0 = kernel.run("import json, time", "json.dumps(time.process_time())")
            t0 = time.monotonic()
            kernel.run(start)
            if not server.started.wait(30):
                raise SystemExit("the capture did not connect to the fast server")
            latencies = []
            while not server.done.is_set():
                latencies.append(kernel.run("1 + 1")[0])
                time.sleep(0.2)
            time.sleep(1.5)  # the last frames reach the recording, the panel redraws once more
            kernel.run(stop)
            t1 = time.monotonic()
            _, stats = kernel.run(
                "import json",
                f"json.dumps({{'renders': ex.renders if {explorer} else 0, 'state': {cap}.stats.state, "
                f"'events': {cap}.stats.events, 'cpu': time.process_time()}})",
            )
        finally:
            kernel.close()
        numbers = {
            e.data["n"]
            for e in read_recording(record)
            if e.kind == "frame" and e.name == "resource.change" and isinstance(e.data, dict)
        }
    assert isinstance(stats, dict)
    window = [(t, c) for t, c in kernel.updates if t0 <= t <= t1]
    per_widget_second = Counter((int(t - t0), c) for t, c in window)
    return {
        **stats,
        "sent": server.sent,
        "recorded": len(numbers),
        "missing": len(set(range(total)) - numbers),
        "redraws_per_s": stats["renders"] / (t1 - t0),
        "cpu_per_s": (stats["cpu"] - float(cpu0)) / (t1 - t0),  # type: ignore[arg-type]
        "worst_widget_per_s": max(per_widget_second.values(), default=0),
        "updates_per_s": len(window) / (t1 - t0),
        "p50_ms": statistics.median(latencies) * 1000,
        "p90_ms": statistics.quantiles(latencies, n=10)[-1] * 1000,
        "worst_ms": max(latencies) * 1000,
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 5000.0
    base = run(False, seconds, rate)
    ex = run(True, seconds, rate)
    print(f"{rate:,.0f} events/s for {seconds:.0f} s into a recording capture; baseline: the same capture, no Explorer")
    rows = [
        ("events sent / recorded / missing", "{sent:,} / {recorded:,} / {missing:,}", "0 missing"),
        ("panel redraws per second", "{redraws_per_s:.1f}", "<= 10"),
        ("widget updates per second, worst widget", "{worst_widget_per_s}", "<= 10"),
        ("widget updates per second, all widgets", "{updates_per_s:.1f}", "(info)"),
        ("kernel CPU seconds per second", "{cpu_per_s:.2f}", "(info)"),
        ("trivial cell reply: median / p90 / worst", "{p50_ms:.0f} / {p90_ms:.0f} / {worst_ms:.0f} ms", "<= 100 ms"),
    ]
    print(f"  {'':<44} {'with Explorer':>26} {'baseline':>26}")
    for name, fmt, target in rows:
        print(f"  {name:<44} {fmt.format(**ex):>26} {fmt.format(**base):>26}   target {target}")
    ok = not ex["missing"] and ex["redraws_per_s"] <= 10 and ex["worst_widget_per_s"] <= 10 and ex["p90_ms"] <= 100
    print("  targets met (cell: p90)" if ok else "  TARGET MISSED")


if __name__ == "__main__":
    main()
