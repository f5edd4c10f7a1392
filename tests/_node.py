"""Node.js and npm packages for the tests that run JavaScript or TypeScript: installed by the test setup.

Node and npm come from Debian's packages when missing (as root with apt-get, like the browser tests'
chromium); npm packages go into the virtual environment's own `npm/` folder, so `make clean` removes them.
A missing tool that cannot be installed fails the test with what to do; it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NPM_PREFIX = Path(sys.prefix) / "npm"


def _apt_install(*packages: str) -> None:
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(
            f"{', '.join(packages)} missing and apt-get is not available: install them (apt-get install -y ...)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update"], [apt, "install", "-y", *packages]):
        done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"'{' '.join(cmd)}' failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")


def ensure_node() -> tuple[str, str]:
    """Paths of `node` and `npm`, installing Debian's `nodejs` and `npm` when either is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _apt_install("nodejs", "npm")
        node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are still missing after apt-get install nodejs npm")
    return node, npm


def ensure_npm_package(package: str, spec: str, binary: str | None = None) -> Path:
    """The folder holding `node_modules/<package>` (and `.bin/<binary>`), installed once with npm."""
    _, npm = ensure_node()
    target = NPM_PREFIX / "node_modules" / package
    if not target.exists() or (binary and not (NPM_PREFIX / "node_modules" / ".bin" / binary).exists()):
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_PREFIX), f"{package}@{spec}"],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(
                f"npm install {package}@{spec} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}"
            )
    return NPM_PREFIX


def ensure_tsc() -> list[str]:
    """The command that runs TypeScript's compiler (`node …/tsc`)."""
    node, _ = ensure_node()
    prefix = ensure_npm_package("typescript", "5", "tsc")
    return [node, str(prefix / "node_modules" / "typescript" / "bin" / "tsc")]
