"""Generated recordings for the analysis benchmarks: fixed seed, any size, written fast.

A Steve recording of pod and deployment changes shaped like Rancher's (nested metadata, labels, the
`kubectl.kubernetes.io/last-applied-configuration` annotation real objects carry, containers, conditions):
5,000 objects changing state, image and replicas, so the schema, the diffs and the Parquet export all have
work to do. Lines are encoded as `RecordingWriter` encodes them (`encode_event`, the recording format of
docs/recording-format.md) but written without its flushing, so a gigabyte takes seconds.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from rancherlab.protocol.frames import parse_frame
from rancherlab.recording import RecordingHeader, encode_event

T0 = datetime(2024, 5, 1, tzinfo=UTC)
OBJECTS = 5_000
PHASES = ("Pending", "Running", "Running", "Running", "Succeeded", "Failed")


def _applied(kind: str, name: str, i: int) -> str:
    """The last-applied-configuration annotation: the manifest as JSON text, as kubectl apply leaves it."""
    spec = {
        "containers": [
            {"name": name, "image": "nginx:1.25", "env": [{"name": f"VAR_{k}", "value": "x" * 24} for k in range(12)]}
        ]
    }
    doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": f"ns-{i % 20}"}, "spec": spec}
    return orjson.dumps(doc).decode()


def _pod(i: int, rv: int, rng: random.Random) -> dict:
    name = f"web-{i}"
    phase = rng.choice(PHASES)
    return {
        "id": f"default/{name}",
        "type": "pod",
        "apiVersion": "v1",
        "kind": "Pod",
        "links": {
            "self": f"https://r/v1/pods/default/{name}",
            "view": f"https://r/api/v1/namespaces/default/pods/{name}",
        },
        "metadata": {
            "name": name,
            "namespace": f"ns-{i % 20}",
            "resourceVersion": str(rv),
            "uid": f"549c7c5e-{i:08d}",
            "labels": {"app": f"web-{i % 50}", "pod-template-hash": "64d85666f9"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": _applied("Pod", name, i)},
            "fields": [name, "1/1", phase, str(rng.randrange(5)), "1s", f"10.42.{i % 250}.{rv % 250}", "node-1"],
            "state": {"name": phase.lower(), "error": phase == "Failed", "transitioning": phase == "Pending"},
        },
        "spec": {
            "containers": [
                {"name": "web", "image": f"nginx:1.{rng.randrange(20, 28)}", "ports": [{"containerPort": 80}]}
            ],
            "nodeName": f"node-{i % 7}",
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(phase == "Running")}]},
    }


def _deployment(i: int, rv: int, rng: random.Random) -> dict:
    name = f"app-{i}"
    ready = rng.randrange(4)
    return {
        "id": f"default/{name}",
        "type": "apps.deployment",
        "metadata": {
            "name": name,
            "namespace": f"ns-{i % 20}",
            "resourceVersion": str(rv),
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": _applied("Deployment", name, i)},
            "state": {"name": "active" if ready else "updating", "error": False, "transitioning": not ready},
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": name, "image": "nginx"}]}}},
        "status": {"readyReplicas": ready, "replicas": 3, "observedGeneration": rv % 9},
    }


def write_recording(path: Path, size: int, *, seed: int = 7) -> int:
    """Write a recording of about `size` bytes at `path`; returns the number of events."""
    rng = random.Random(seed)
    header = RecordingHeader(
        "steve", "steve:c-bench", "https://rancher.example", "/v1/subscribe", {}, synthetic=True, frame_fields=True
    )
    n = 0
    written = 0
    with open(path, "wb", buffering=1 << 20) as f:
        written += f.write(orjson.dumps(header.to_json()) + b"\n")
        while written < size:
            n += 1
            i = rng.randrange(OBJECTS)
            obj = _pod(i, n, rng) if i % 4 else _deployment(i, n, rng)
            name = (
                "resource.create" if n <= OBJECTS else ("resource.remove" if rng.random() < 0.01 else "resource.change")
            )
            raw = orjson.dumps({"name": name, "resourceType": obj["type"], "revision": str(n), "data": obj}).decode()
            event = parse_frame(raw, "steve").stamped(seq=n, conn=1, t=n / 1000, ts=T0 + timedelta(milliseconds=n))
            written += f.write(encode_event(event))
        f.write(orjson.dumps({"summary": {"total_events": n}}) + b"\n")
    return n
