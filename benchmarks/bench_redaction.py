"""How much does redaction cost per received frame, against parsing the same frame?

Redaction runs on every event as it enters rancherlab. Most frames hold nothing to hide, and a quick scan of
their text for the endings of secret field and type names (rancherlab.protocol.secrets) lets them skip the
full walk. The ratios printed here are the cost of that scan, and of a whole `redact`, relative to
`parse_frame` on the same text, over every object of the simulator's world (Norman and Steve views), and
over the share of those frames that hold no secret.

    python benchmarks/bench_redaction.py [ROUNDS]   (default 20)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rancherlab.protocol import Event, norman, parse_frame, steve
from rancherlab.redaction import Redactor
from rancherlab.simulator import formats as F
from rancherlab.simulator.world import World


def frames() -> list[tuple[str, str]]:
    world = World(3)
    for _ in range(50):
        world.step()
    out = []
    for res in world.resources():
        for _schema, obj in F.norman_views(world, res, "global", None, "https://r"):
            out.append(("norman", norman.change_frame(obj)))
        prefix = "" if res.cluster == "local" else f"/k8s/clusters/{res.cluster}"
        view = F.steve_view(world, res, res.kind, "https://r", prefix)
        if view is not None:
            out.append(("steve", steve.encode_event("resource.change", data=view, revision="1")))
    return out


def best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        begun = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begun)
    return min(times)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    texts = frames()
    events: list[Event] = [parse_frame(raw, dialect) for dialect, raw in texts]
    redactor = Redactor(credentials=["token-bench:" + "x" * 54])
    clean = [e for e in events if redactor.redact(e) is e]
    parse = best(lambda: [parse_frame(raw, dialect) for dialect, raw in texts], rounds)
    scan = best(lambda: [redactor._plan(e.raw or "") for e in events], rounds)
    whole = best(lambda: [redactor.redact(e) for e in events], rounds)
    scan_clean = best(lambda: [redactor._plan(e.raw or "") for e in clean], rounds)
    n, c = len(events), len(clean)
    print(f"{n} frames ({c} with nothing to hide), best of {rounds} rounds")
    print(f"parse_frame        {parse / n * 1e6:7.1f} us/frame")
    print(f"quick scan         {scan / n * 1e6:7.1f} us/frame  ({scan / parse:.2f}x parse)")
    print(f"redact (all)       {whole / n * 1e6:7.1f} us/frame  ({whole / parse:.2f}x parse)")
    print(f"quick scan (clean) {scan_clean / max(c, 1) * 1e6:7.1f} us/frame")


if __name__ == "__main__":
    main()
