"""How fast does `load()` turn a recording into a frame, against `pyarrow.json.read_json` on the same bytes?

pyarrow's C++ reader is the floor for "JSONL → columns" (research §E): it parses each line once and builds
struct columns, but it raises on the type conflicts a real stream has and gives no Event semantics. The
ratio printed here is what rancherlab's tolerance and per-dialect fields cost on top.

    python benchmarks/bench_load.py [EVENTS]   (default 100,000)
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.json as pj

from rancherlab.analysis import load
from rancherlab.protocol import Event, norman, parse_frame, steve
from rancherlab.recording import RecordingHeader, RecordingWriter

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def objects() -> list[tuple[str, dict]]:
    """Rancher-shaped objects of both dialects, with enough nesting to be honest about parse cost."""
    pod = {
        "id": "default/web-0",
        "type": "pod",
        "apiVersion": "v1",
        "kind": "Pod",
        "links": {"self": "https://r/v1/pods/default/web-0", "view": "https://r/api/v1/namespaces/default/pods/web-0"},
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            "resourceVersion": "1",
            "uid": "549c7c5e-0000",
            "labels": {"app": "web", "pod-template-hash": "64d85666f9"},
            "fields": ["web-0", "1/1", "Running", "0", "1s", "10.42.2.202", "node-1", "<none>", "<none>"],
            "state": {"name": "running", "error": False, "transitioning": False, "message": ""},
        },
        "spec": {
            "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}],
            "nodeName": "node-1",
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "error": False}]},
    }
    dep = {
        "id": "deployment:default:web",
        "type": "deployment",
        "baseType": "workload",
        "namespaceId": "default",
        "projectId": "c-abc12:p-xyz34",
        "scale": 2,
        "state": "active",
        "transitioning": "no",
        "containers": [{"image": "nginx", "name": "web", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
        "deploymentStatus": {"availableReplicas": 2, "readyReplicas": 2, "replicas": 2},
        "links": {"self": "https://r/v3/project/c-abc12:p-xyz34/workloads/deployment:default:web"},
    }
    return [("steve", pod), ("norman", dep)]


def events(n: int) -> list[Event]:
    shapes = objects()
    out = []
    for i in range(n):
        dialect, base = shapes[i % 2]
        obj = copy.deepcopy(base)
        obj["id"] = f"{obj['id']}-{i % 500}"
        if dialect == "steve":
            obj["metadata"]["resourceVersion"] = str(i)
            text = steve.encode_event("resource.change", data=obj, revision=str(i), echo={"resourceType": "pod"})
        else:
            obj["scale"] = i % 7
            text = norman.change_frame(obj)
        out.append(
            parse_frame(text, dialect).stamped(seq=i + 1, conn=1, t=i * 0.01, ts=T0 + timedelta(seconds=i * 0.01))
        )
    return out


def write(path: Path, evs: list[Event]) -> None:
    # One recording per dialect is the rule; the benchmark mixes both shapes in a Steve one to be honest
    # about parse cost, so the Norman-shaped frames are re-parsed as Steve here.
    header = RecordingHeader("steve", "steve", "https://rancher.example", "/v1/subscribe", {}, synthetic=True)
    with RecordingWriter(path, header) as w:
        w.write_many(dataclasses.replace(e, dialect="steve") for e in evs)


def best(fn, runs: int = 2) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n: int = 100_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        write(path, events(n))
        size = path.stat().st_size
        body = Path(tmp) / "body.jsonl"  # pyarrow wants one schema: the event lines without header and summary
        body.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[1:-1]))
        arrow = best(lambda: pj.read_json(body))
        ours = best(lambda: load(path, progress=False))
    print(f"{n:,} events, {size / 1e6:.1f} MB")
    print(f"pyarrow.json.read_json: {arrow:.2f} s")
    print(f"rancherlab load():      {ours:.2f} s")
    print(f"ratio: {ours / arrow:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
