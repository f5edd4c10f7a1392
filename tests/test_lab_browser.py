"""The Explorer in a real JupyterLab in a real browser: Debian's chromium driven by Playwright (never a browser
download) opens a copy of notebook 01, runs it, types a server URL and a distinctive token into the Explorer,
connects and captures; then the notebook is saved with widget state and the token is searched for everywhere
JupyterLab and IPython write: it must be in none of those files.

JupyterLab runs on loopback with its own temporary config, settings, workspaces, runtime and IPython folders, so
the test neither reads nor writes the user's. Screenshots go to `test-artifacts/lab-browser/` (not committed).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rancherlab.simulator import Simulator

from .conftest import SECRET_TOKEN
from .test_browser import ensure_chromium

# The first run on a clean machine installs chromium inside the test, which pytest-timeout counts too.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01-explore-the-subscribe-api.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "lab-browser"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = SECRET_TOKEN.split(":", 1)[1]
STEP = 60_000  # ms: one UI step (the first kernel start and the notebook's own cells are the slow ones)

# JupyterLab settings for the test: save widget state with the notebook (what could leak a token), render
# every cell (no virtual scrolling), and no calls to the network (news, update checks, extension listings).
LAB_SETTINGS = {
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A JupyterLab server on loopback whose every folder is a temporary one."""

    def __init__(self, base: Path) -> None:
        self.dirs = {
            name: base / name
            for name in ("notebooks", "config", "data", "runtime", "settings", "workspaces", "ipython")
        }
        for d in self.dirs.values():
            d.mkdir()
        for name, value in LAB_SETTINGS.items():
            path = self.dirs["settings"] / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.dirs["config"]),
            "JUPYTER_DATA_DIR": str(self.dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(self.dirs["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(self.dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.dirs["workspaces"]),
            "IPYTHONDIR": str(self.dirs["ipython"]),
            "JUPYTER_PLATFORM_DIRS": "1",
            "MPLBACKEND": "Agg",
        }
        for name in ("RANCHER_URL", "RANCHER_TOKEN_KEY", "RANCHER_ACCESS_KEY", "RANCHER_SECRET_KEY"):
            self.env.pop(name, None)
        self.env["RANCHER_CONFIG_DIR"] = str(base / "no-rancher-cli")
        self.log = (base / "lab.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.dirs['notebooks']}",
                "--LabApp.news_url=",
                "--LabApp.extension_manager=readonly",
                *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.dirs["notebooks"],
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                text = self.log_text()
                self.log.close()
                pytest.fail(f"JupyterLab exited with {self.proc.returncode}:\n{text}")
            try:
                if httpx.get(f"{self.url}/api/status", params={"token": self.token}, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        text = self.log_text()
        self.close()
        pytest.fail(f"JupyterLab did not answer within 60 s:\n{text}")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def close(self) -> None:
        """Stop the server the way Ctrl-C does: kernels shut down and IPython writes its history."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            time.sleep(0.2)
            self.proc.send_signal(signal.SIGINT)  # JupyterLab asks for confirmation on the first one
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(10)
        if not self.log.closed:
            self.log.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    server = Lab(tmp_path)
    try:
        yield server
    finally:
        server.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def files_holding(folder: Path, needles: tuple[str, ...]) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path} holds {n[:12]}…" for n in needles if n.encode() in data]
    return hits


def test_the_explorer_in_jupyterlab_connects_shows_events_and_saves_no_token(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = ensure_chromium()
    notebook = lab.dirs["notebooks"] / "01.ipynb"
    shutil.copy(NOTEBOOK, notebook)
    with Simulator(seed=4, token=SECRET_TOKEN, rate=30, norman_ping=0.5) as sim, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(STEP)
        expect.set_options(timeout=STEP)
        try:
            page.goto(f"{lab.url}/lab/tree/01.ipynb?token={lab.token}")
            expect(page.locator(".jp-Notebook")).to_be_visible()
            expect(page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first).to_be_visible()
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            expect(page.locator(".jp-InputPrompt", has_text="[1]:")).to_have_count(1)  # the kernel runs the cells
            explorer = page.locator(".rl-explorer").first
            expect(explorer).to_be_visible()
            # the notebook's last cell stops its own capture
            expect(page.locator(".jp-OutputArea-output", has_text="state='stopped'")).to_have_count(1)
            shot(page, "1-notebook-ran")

            url = explorer.locator("input[placeholder^='https://rancher.example.com']")
            url.fill(sim.url)
            url.press("Enter")
            token = explorer.locator("input[type='password'][placeholder^='token-xxxxx']")
            token.fill(SECRET_TOKEN)
            token.press("Enter")
            expect(explorer.locator(".rl-message")).to_contain_text("credential taken")
            expect(token).to_have_value("")  # the kernel cleared the field at once
            explorer.locator("button", has_text="Connect").click()
            expect(explorer.locator(".rl-message")).to_contain_text(f"connected to {sim.url}")
            explorer.locator("button", has_text="Start").click()

            expect(explorer.locator(".rl-status")).to_contain_text("connected since")  # the new capture's panel
            total = explorer.locator(".rl-total")
            expect(total).not_to_have_text("0")
            first = int(total.inner_text())
            expect(total).not_to_have_text(str(first))
            assert int(total.inner_text()) > first > 0  # the live counts rise
            expect(explorer.locator("table.rl-counts")).to_contain_text("resource.change")
            shot(page, "2-capturing")

            explorer.locator("button", has_text="Stop").click()
            expect(explorer.locator(".rl-status")).to_contain_text("stopped")
            events = explorer.locator(".rl-events select")
            labels = events.locator("option").all_inner_texts()
            pick = next(i for i, text in enumerate(labels) if "resource.change" in text)
            events.select_option(index=pick)
            shown = explorer.locator(".rl-event-json pre")
            expect(shown).to_contain_text('"id":')
            expect(explorer.locator(".rl-event-raw pre")).to_contain_text("resource.change")
            shot(page, "3-event-json")

            page.keyboard.press("Control+s")
            deadline = time.monotonic() + 30
            saved: dict = {}
            while time.monotonic() < deadline:
                saved = json.loads(notebook.read_text())
                if "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {}):
                    break
                time.sleep(0.2)
            assert "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {}), (
                "the notebook was not saved with widget state"
            )
            assert sim.url in notebook.read_text()  # what was typed is saved, except the token
        except BaseException:
            shot(page, "failed")
            print(lab.log_text())  # shown with the failure
            raise
        finally:
            browser.close()
    lab.close()  # kernels shut down: IPython's history is on disk now

    history = list(lab.dirs["ipython"].rglob("history.sqlite"))
    assert history and b"try_simulator" in history[0].read_bytes()  # the right place is searched
    leaks = []
    for name in ("notebooks", "ipython", "workspaces", "settings", "config", "runtime", "data"):
        leaks += files_holding(lab.dirs[name], (SECRET_TOKEN, SECRET))
    assert (lab.dirs["notebooks"] / ".ipynb_checkpoints").exists()  # checkpoints were searched too
    assert not leaks, leaks
