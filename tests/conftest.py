"""Shared test helpers: where the reference samples live, and a distinctive token to grep for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "rancher-ws-samples"
# A credential distinctive enough that finding it anywhere it should not be is unambiguous.
SECRET_TOKEN = "token-zq9xk:Zq9SecretNeverLeaksAnywhere0123456789abcdefghijklmnop"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture(scope="session")
def frames_index() -> list[dict[str, Any]]:
    lines = (SAMPLES / "frames-index.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]
