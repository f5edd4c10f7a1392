"""A real browser against the replay server: headless Chromium opens the page at `/`, whose own JavaScript
WebSocket client subscribes same-origin with the `R_SESS` cookie, and shows what a browser receives.

Chromium is driven over the DevTools protocol with a plain websockets client; no tool that fetches its
own browser. Debian's `chromium` is installed when missing (CI runs as root on Debian).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from rancherlab.recording import read_recording
from rancherlab.replayserver import ReplayServer

from .conftest import SECRET_TOKEN
from .test_replay_server import norman_recording, steve_recording  # noqa: F401 - session fixtures

# The first run on a clean machine installs chromium inside the fixture, which pytest-timeout counts too.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

CHROMIUM = "/usr/bin/chromium"
PAGE_TIMEOUT = 20.0


def ensure_chromium() -> str:
    """Install Debian's chromium once when it is missing; fail (never skip) when that is impossible."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(
            f"{CHROMIUM} is missing and apt-get is not available to install it: this test needs Debian's "
            "'chromium' package (apt-get install -y chromium)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update"], [apt, "install", "-y", "chromium"]):
        done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(
                f"'{' '.join(cmd)}' failed with exit code {done.returncode}; cannot run the browser test:\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


class Chromium:
    """A headless Chromium process and its DevTools browser endpoint."""

    def __init__(self, binary: str, profile: str) -> None:
        self.profile = Path(profile)
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ws_url = self._devtools_url()

    def _devtools_url(self) -> str:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                pytest.fail(f"chromium exited with {self.proc.returncode} before DevTools was up:\n{err[-2000:]}")
            lines = marker.read_text().split("\n") if marker.exists() else []
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].strip():
                return f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
            time.sleep(0.05)
        pytest.fail("chromium did not write DevToolsActivePort within 20 s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    binary = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="rancherlab-chromium-") as profile:
        browser = Chromium(binary, profile)
        try:
            yield browser
        finally:
            browser.close()


class DevTools:
    """Just enough of the DevTools protocol: commands on a flattened page session, answers by id."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.ids = itertools.count(1)

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await self.conn.send(json.dumps(message))
        while True:
            reply = json.loads(await asyncio.wait_for(self.conn.recv(), 15))
            if reply.get("id") == ident:
                if "error" in reply:
                    raise AssertionError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})


_READ_PAGE = """JSON.stringify((() => {
  const status = document.getElementById("status");
  const counts = {};
  document.querySelectorAll("[id^='count-']").forEach(el => { counts[el.id.slice(6)] = Number(el.textContent); });
  return {done: status.dataset.done, state: status.dataset.state, total: Number(status.dataset.total),
          expected: Number(status.dataset.expected), counts, href: location.href,
          cookie: document.cookie.includes("R_SESS=")};
})())"""


async def open_page(browser: Chromium, url: str) -> dict[str, Any]:
    """Open `url` in a new tab and wait until the page says it has received every recorded event."""
    async with connect(browser.ws_url, max_size=None) as conn:
        tools = DevTools(conn)
        target = (await tools.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await tools.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        try:
            await tools.call("Page.enable", session)
            await tools.call("Page.navigate", session, url=url)
            deadline = time.monotonic() + PAGE_TIMEOUT
            seen: dict[str, Any] = {}
            while time.monotonic() < deadline:
                result = await tools.call("Runtime.evaluate", session, expression=_READ_PAGE, returnByValue=True)
                value = result.get("result", {}).get("value")
                if isinstance(value, str):
                    seen = json.loads(value)
                    if seen["done"] == "true":
                        await asyncio.sleep(0.3)  # anything beyond the recording would show up now
                        final = await tools.call("Runtime.evaluate", session, expression=_READ_PAGE, returnByValue=True)
                        return json.loads(final["result"]["value"])
                await asyncio.sleep(0.1)
            raise AssertionError(f"the page did not finish within {PAGE_TIMEOUT} s; it shows {seen}")
        finally:
            await tools.call("Target.closeTarget", targetId=target)


def recorded_count(path: Path, name: str) -> int:
    return sum(1 for e in read_recording(path) if e.kind == "frame" and e.name == name)


@pytest.mark.parametrize("dialect", ["norman", "steve"])
def test_a_browser_page_receives_what_was_recorded(chromium, dialect, request):
    recording: Path = request.getfixturevalue(f"{dialect}_recording")
    with ReplayServer(recording, token=SECRET_TOKEN, speed=5, norman_ping=0.5, steve_ping=0.5) as server:
        shown = asyncio.run(open_page(chromium, f"{server.url}/?token={SECRET_TOKEN}"))
    assert shown["state"] == "open", shown  # the cookie authenticated the same-origin socket
    assert shown["cookie"] and "token=" not in shown["href"]  # the token left the address bar for the cookie
    assert shown["counts"]["resource.change"] == recorded_count(recording, "resource.change")
    assert shown["counts"].get("resource.remove", 0) == recorded_count(recording, "resource.remove")
    assert shown["total"] == shown["expected"] > 0
    assert shown["counts"]["ping"] >= 1  # the server's own pings reach the page too
