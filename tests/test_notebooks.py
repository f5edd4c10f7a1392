"""The notebooks and the plots in a real Jupyter kernel (nbclient): every notebook runs top to bottom, shows every
plot as an image, and no output holds a credential; a plot shows in a fresh kernel with no `%matplotlib inline`.

Kernels start with the environment a JupyterLab server gives them (no `MPLBACKEND`), so what passes here is
what a user sees. The notebooks run from a copy in a temporary folder, so what they write stays out of the tree.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import SECRET_TOKEN

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SAMPLE = ROOT / "recordings" / "samples" / "norman-project.jsonl"
FULL_TOKEN = re.compile(r"token-[a-z0-9]{5}:[A-Za-z0-9]{20,}")
# The simulator's credential while the notebooks run: distinctive, so finding it anywhere is a leak.
DISTINCT_TOKEN = SECRET_TOKEN
PLOT_CALL = re.compile(r"\b(plot_rate|plot_states)\(")

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(240)]


def kernel_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return env


def execute(nb: Any, cwd: Path) -> Any:
    client = NotebookClient(
        nb, timeout=150, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env=kernel_env())
    return nb


def images(cell: Any) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def code(*sources: str) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_a_plot_shows_as_an_image_in_a_fresh_kernel(tmp_path: Path) -> None:
    nb = execute(
        code(
            f"import rancherlab as rl\ndf = rl.load({str(SAMPLE)!r})",
            'rl.plot_rate(df, freq="1s")',
            'fig = rl.plot_rate(df, freq="1s")',
            "fig",
            "import matplotlib\nmatplotlib.get_backend()",
            'pod = rl.state(df).query("type == \'pod\'")["id"].iloc[0]\nrl.plot_states(df, "pod", pod)',
            # with the inline backend active (and pyplot imported) a plot still shows once, never twice
            '%matplotlib inline\nimport matplotlib.pyplot as plt\nrl.plot_rate(df, freq="1s")',
            'plt.plot([1, 2])\nrl.plot_rate(df, freq="1s")',
        ),
        tmp_path,
    )
    cells = nb.cells
    assert images(cells[1]) == 1, cells[1].outputs
    assert cells[1].outputs[0]["output_type"] == "execute_result"
    assert cells[2].outputs == []  # an assignment shows nothing ...
    assert images(cells[3]) == 1  # ... and the name alone shows the image
    assert images(cells[5]) == 1
    assert images(cells[6]) == 1
    # the user's own pyplot figure and ours: two images, ours not drawn twice
    assert images(cells[7]) == 2
    png = cells[1].outputs[0]["data"]["image/png"]
    assert len(png) > 1000


def test_scripts_plot_headless(tmp_path: Path) -> None:
    script = (
        "import rancherlab as rl, matplotlib, sys\n"
        f"df = rl.load({str(SAMPLE)!r})\n"
        f"rl.plot_rate(df).savefig({str(tmp_path / 'rate.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    assert (tmp_path / "rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_there_are_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 3 and [n[:3] for n in names[:3]] == ["01-", "02-", "03-"]


def with_canary(nb: Any) -> Any:
    """`nb` with a first cell that makes the simulator use the distinctive credential (the notebook code is unchanged)."""
    seed = nbformat.v4.new_code_cell(
        f"import rancherlab.simulator as _sim\n_sim.generate_token = lambda: {DISTINCT_TOKEN!r}\ndel _sim"
    )
    nb.cells.insert(0, seed)
    return nb


def leaks(nb: Any, folder: Path) -> list[str]:
    """Where the credential shows: the executed notebook's outputs (the canary cell removed), or files under `folder`."""
    secret = DISTINCT_TOKEN.split(":")[1]
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    found = ["outputs"] if secret in outputs or FULL_TOKEN.search(outputs) else []
    return found + [str(f) for f in folder.rglob("*") if f.is_file() and secret.encode() in f.read_bytes()]


def test_the_leak_check_finds_the_simulator_credential(tmp_path: Path) -> None:
    """The check the notebooks pass must see the credential when a cell shows it (and only then)."""
    nb = with_canary(
        code(
            "import rancherlab as rl\nsim = rl.Simulator(seed=1).start()",
            "print(len(sim.token))",
            "sim.token",
            "sim.close()",
        )
    )
    execute(nb, tmp_path)
    nb.cells.pop(0)
    assert leaks(nb, tmp_path) == ["outputs"]
    assert nb.cells[1].outputs[0]["text"].strip() == str(len(DISTINCT_TOKEN))
    nb.cells[2].outputs = []
    assert leaks(nb, tmp_path) == []


def stored_without_outputs(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_shows_its_plots_and_no_secret(path: Path, tmp_path: Path) -> None:
    assert stored_without_outputs(path), f"{path.name} is stored with outputs: clear them before committing"
    # the notebooks' world: their folder next to recordings/ with the committed samples
    (tmp_path / "recordings").mkdir()
    shutil.copytree(ROOT / "recordings" / "samples", tmp_path / "recordings" / "samples")
    (tmp_path / "notebooks").mkdir()
    copy = tmp_path / "notebooks" / path.name
    shutil.copy(path, copy)
    nb = with_canary(nbformat.read(copy, as_version=4))
    execute(nb, copy.parent)
    nb.cells.pop(0)
    assert leaks(nb, tmp_path) == []
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    plot_cells = [c for c in nb.cells if c.cell_type == "code" and PLOT_CALL.search(c.source)]
    shown = [images(c) == 1 for c in plot_cells]
    assert plot_cells, f"{path.name} has no plot"
    assert all(shown), [c.source for c, ok in zip(plot_cells, shown) if not ok]
    for c in plot_cells:  # one plot per cell, as its last expression
        last = ast.parse(_python(c.source)).body[-1]
        assert isinstance(last, ast.Expr), c.source


def _python(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
