"""The simulator stays bounded however long it runs and refuses options that would make it spin."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from rancherlab.simulator import Simulator, SimulatorConfig
from rancherlab.simulator.world import World

from .conftest import SECRET_TOKEN


def test_world_history_is_bounded_by_its_limit() -> None:
    world = World(3, history_limit=300)
    for _ in range(3000):
        world.step()
    assert 300 <= len(world.history) <= 300 + 300 // 8 + 16
    assert world.trimmed_revision > 0 and world.history[0].revision > world.trimmed_revision
    revisions = [c.revision for c in world.history]
    assert revisions == sorted(revisions) and revisions[-1] == world.revision


def test_unbounded_world_keeps_every_change() -> None:
    world = World(3)
    built = len(world.history)
    changes = [c for _ in range(500) for c in world.step()]
    assert world.history[built:] == changes and world.trimmed_revision == 0


def test_a_resume_from_before_the_trimmed_history_is_too_old() -> None:
    """A revision the server let go of cannot be resumed: Steve says "too old" rather than skipping changes."""
    with Simulator(seed=4, token=SECRET_TOKEN, rate=0, steve_ping=10, history_limit=50, steve_retain=1000) as sim:
        start = sim.world.revision
        sim.step(400)
        assert sim.world.trimmed_revision > start

        async def go(revision: int) -> list[str]:
            url = sim.url.replace("http", "ws", 1) + "/v1/subscribe"
            async with connect(url, additional_headers={"Authorization": f"Bearer {SECRET_TOKEN}"}) as ws:
                await ws.send(json.dumps({"resourceType": "pod", "resourceVersion": str(revision)}))
                names: list[str] = []
                while "resource.error" not in names and len(names) < 2:
                    names.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["name"])
                return names

        assert asyncio.run(go(start)) == ["resource.start", "resource.error"]


@pytest.mark.parametrize(
    "options",
    [
        {"norman_ping": 0},
        {"steve_ping": -1},
        {"count_interval": 0},
        {"rate": -5},
        {"rate": float("nan")},
        {"buffer": 0},
        {"drop_every": -1},
        {"history_limit": 0},
    ],
)
def test_options_that_would_spin_or_grow_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        SimulatorConfig(token=SECRET_TOKEN, **options)  # type: ignore[arg-type]
