"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel, and shows no credential."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
FULL_TOKEN = re.compile(r"token-[a-z0-9]{5}:[A-Za-z0-9]{20,}")

pytestmark = [pytest.mark.notebook, pytest.mark.timeout(180)]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=False, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env={**os.environ, "MPLBACKEND": "Agg"})
    text = nbformat.writes(nb)
    assert not FULL_TOKEN.search(text), "a credential reached the notebook's outputs"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
