"""`capture` inside a real Jupyter kernel (ipykernel 7): it keeps receiving while no cell runs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

from rancherlab.simulator import Simulator

from ._stream_support import SIM_FAST, TOKEN

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=12, rate=10, token=TOKEN, **SIM_FAST) as s:
        yield s


def _cell_output(nb: nbformat.NotebookNode, index: int) -> str:
    return "".join(o.get("text", "") for o in nb.cells[index].outputs if o.get("output_type") == "stream")


def test_capture_keeps_receiving_between_cells(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silences jupyter_core's path-migration warning
    cells = [
        (
            "import os, rancherlab\n"
            "from rancherlab.capture import capture\n"
            "from rancherlab.stream import StreamOptions\n"
            f"cap = capture({sim.url!r}, 'steve', types=['pod', 'configmap'], credentials=os.environ['LAB_TOKEN'],\n"
            "              env={}, cli_config=False, options=StreamOptions(liveness=3))\n"
            "print('started', cap.stats.state)"
        ),
        "print('before', cap.stats.events, cap.stats.pings)",
        "print('after', cap.stats.events, cap.stats.pings, cap.stats.connections)\ncap.stop()\nprint(cap.stats.state)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=30, kernel_name="python3", allow_errors=False)
    with client.setup_kernel(env={**os.environ, "LAB_TOKEN": TOKEN}):
        client.execute_cell(nb.cells[0], 0)
        client.execute_cell(nb.cells[1], 1)
        time.sleep(1.5)  # no cell runs: the kernel's own loop is idle between cells
        client.execute_cell(nb.cells[2], 2)
    assert "started" in _cell_output(nb, 0)
    _, before, pings_before = _cell_output(nb, 1).split()
    _, after, pings_after, connections = _cell_output(nb, 2).split("\n")[0].split()
    assert int(after) > int(before) and int(pings_after) >= int(pings_before) + 5  # steve pings every 0.2 s here
    assert connections == "1"
    assert "stopped" in _cell_output(nb, 2)
    assert TOKEN not in str(nb)
