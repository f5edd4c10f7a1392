"""The Explorer widget against the simulator: controls filled from REST, connect, live counts, no secret in state."""

from __future__ import annotations

import json
import time

import ipywidgets

from rancherlab.explorer import Explorer
from rancherlab.simulator import Simulator

from .conftest import SECRET_TOKEN


def widget_state(root: ipywidgets.Widget) -> str:
    """Every trait of every widget in the tree, as the frontend (and a saved notebook) would get it."""
    states, todo = [], [root]
    while todo:
        widget = todo.pop()
        states.append(widget.get_state())
        todo.extend(getattr(widget, "children", ()))
        if getattr(widget, "layout", None) is not None:
            states.append(widget.layout.get_state())
    return json.dumps(states, default=str)


def test_explorer_picks_a_scope_connects_and_counts_events():
    with Simulator(seed=4, token=SECRET_TOKEN, rate=40, norman_ping=0.2) as sim:
        ex = Explorer(sim.url, SECRET_TOKEN, env={}, cli_config=False, refresh=0.1)
        try:
            assert sorted(value for _, value in ex.cluster.options) == sorted(sim.world.clusters())
            cluster = ex.cluster.value
            assert cluster != "local" and ex.project.options  # a downstream cluster is picked first
            assert "pod" in ex.types.options and ex.types.value == ("pod",)
            assert str(ex.scope()) == f"project:{ex.project.value}"
            assert f"/v3/projects/{ex.project.value}/subscribe" in ex.endpoint.value

            ex.connect_button.click()
            deadline = time.monotonic() + 10
            while "resource.change" not in ex.counts.value and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "resource.change" in ex.counts.value and "<td>pod</td>" in ex.counts.value
            assert "running" in ex.status.value
            ex.stop_button.click()
            assert not ex.capture.running
            df = ex.frame()
            assert set(df["type"].dropna()) >= {"pod"}

            ex.api.value = "steve"
            assert str(ex.scope()) == f"steve:{cluster}" and "pod" in ex.types.options

            for text in (widget_state(ex.widget), repr(ex), ex.header.value):
                assert SECRET_TOKEN not in text and SECRET_TOKEN.split(":")[1] not in text
            assert "token-zq…" in ex.header.value  # shown masked
        finally:
            ex.close()
