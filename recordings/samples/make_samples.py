"""Regenerate the committed sample recordings from the embedded simulator.

    .venv/bin/python recordings/samples/make_samples.py

Each sample is a real rancherlab capture of the simulator (snapshot, live frames, a forced 1006 drop and
the resync after it), with its header marked `synthetic` so nobody mistakes it for a real Rancher's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import rancherlab as rl

HERE = Path(__file__).resolve().parent
NOTE = "synthetic: recorded from the rancherlab simulator (seed {seed}), not from a real Rancher"


def record(sim: rl.Simulator, name: str, scope: str, seed: int, **kw: object) -> Path:
    path = HERE / name
    cap = rl.capture(sim.url, scope, credentials=sim.token, record=path, overwrite=True, env={}, cli_config=False, **kw)
    time.sleep(4)
    sim.drop_now()  # a routine Rancher close: the recording shows the gap and the resync
    time.sleep(4)
    cap.stop()
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header.update(synthetic=True, note=NOTE.format(seed=seed))
    path.write_text("\n".join([json.dumps(header, separators=(",", ":")), *lines[1:]]) + "\n")
    return path


def main() -> None:
    seed = 11
    with rl.Simulator(seed, rate=6, norman_ping=2, steve_ping=3) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = next(p for p in sim.world.projects(cluster) if p)
        made = [
            record(
                sim,
                "norman-project.jsonl",
                f"project:{project}",
                seed,
                types=[
                    "pod",
                    "deployment",
                    "workload",
                    "namespacedSecret",
                    "namespacedBasicAuth",
                    "namespacedCertificate",
                ],
            ),
            record(
                sim,
                "steve-cluster.jsonl",
                f"steve:{cluster}",
                seed,
                watches=[rl.Watch("pod"), rl.Watch("apps.deployment"), rl.Watch("secret")],
            ),
            record(sim, "norman-global.jsonl", "global", seed, types=["cluster", "project", "node", "user", "token"]),
        ]
    for path in made:
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
