"""`rancherlab check-client`: does *your* subscribe client survive what Rancher does to it?

A Rancher runs on loopback (the embedded simulator, or a recording served by the replay server) behind a
fault proxy (`_proxy.FaultProxy`) that throws Rancher's real failures at whatever client connects, on a
schedule: a drop without a close frame, a stall with the TCP connection open, a restart behind a load
balancer, Steve watch expiry, "too old" on resume, a watch answered start-then-stop, and a burst that makes
Rancher drop a slow reader. It observes the client from the server side and judges it (`_checks`).

The client is started with `RANCHER_URL`, `RANCHER_TOKEN_KEY` and `RANCHERLAB_STATE_FILE` in its environment;
if it writes the ids it holds to that file (JSON lines, `{"type": "pod", "ids": [...]}`, the last line per type
counts), the check compares them with a fresh list at the end.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import orjson

from .._loop import LoopThread
from ..errors import EXIT_CLIENT_FAILED, EXIT_OK, UsageError
from ._checks import CHECKS, CheckResult, Observation, evaluate
from ._proxy import FaultProxy

STATE_FILE_ENV: Final = "RANCHERLAB_STATE_FILE"


@dataclass(frozen=True, slots=True)
class CheckSchedule:
    """Every interval of the schedule, in seconds (counts are events). The defaults take about two minutes
    and give a client with the dashboard's 35 s liveness time to notice the stall."""

    connect_timeout: float = 60.0  # for the client's first socket
    reconnect_timeout: float = 60.0  # for a new socket after a drop, stall or restart (backoff may be long)
    settle: float = 3.0  # before the first fault
    window: float = 6.0  # given to the client after each fault
    stall: float = 40.0
    down: float = 6.0  # the restart's outage
    burst: int = 2000  # world changes at once (simulator only)
    rate: float = 5.0  # the simulator's changes per second
    final: float = 3.0  # with the world still, before the state is compared
    ping: float | None = None  # the server's ping interval; None: Rancher's (Norman 5 s, Steve 30 s)

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "reconnect_timeout", "settle", "window", "stall", "down", "rate", "final"):
            if not getattr(self, name) >= 0:
                raise UsageError(f"{name} must be a number of seconds >= 0")
        if self.ping is not None and not self.ping > 0:
            raise UsageError("ping must be a positive number of seconds")
        if self.burst < 0:
            raise UsageError("burst must be a count >= 0")


@dataclass(frozen=True)
class CheckReport:
    """The report card: one `CheckResult` per check; `passed` when none failed (n/a is not a failure)."""

    results: tuple[CheckResult, ...]
    dialect: str | None
    observations: tuple[Observation, ...] = field(repr=False, default=())
    client_exit: int | None = None

    @property
    def passed(self) -> bool:
        return self.dialect is not None and all(r.outcome != "fail" for r in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_CLIENT_FAILED

    def outcome(self, check: str) -> str:
        return next(r.outcome for r in self.results if r.id == check)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "dialect": self.dialect,
            "client_exit": self.client_exit,
            "checks": [r.as_dict() for r in self.results],
        }

    def text(self) -> str:
        marks = {"pass": "PASS", "fail": "FAIL", "n/a": " n/a"}
        lines = [f"client check ({self.dialect or 'the client never connected'}):"]
        for r in self.results:
            lines.append(f"  {marks[r.outcome]}  {r.title}" + (f": {r.detail}" if r.detail else ""))
            if r.outcome == "fail":
                lines.append(f"        Rancher: {r.models}")
                lines.append(f"        do this: {r.should}")
        failed = sum(r.outcome == "fail" for r in self.results)
        lines.append("every check passed" if self.passed else f"{failed} check(s) failed")
        return "\n".join(lines)


class ClientCheck:
    """Run the schedule against a client: `ClientCheck(cmd="node my-client.mjs").run()` → `CheckReport`.

    Without `cmd`, `on_ready(url, token)` is called once the server listens and the check waits for any
    client. `recording` serves that recording (replay server) instead of the simulator; the burst then does
    not apply. `rancher_version` (a release such as "v2.8.3" or a profile name such as "2.7-head", see
    `rancherlab.simulator.PROFILES`) makes the simulator and the proxy's own answers send what that Rancher
    sent. Raises `UsageError` for a bad recording path, schedule or version.
    """

    def __init__(
        self,
        *,
        cmd: str | None = None,
        recording: str | os.PathLike[str] | None = None,
        schedule: CheckSchedule | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        rancher_version: str | None = None,
        client_output: IO[str] | None = None,
        on_ready: Callable[[str, str], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if recording is not None and not Path(recording).exists():
            raise UsageError(f"no recording at {recording}: record one with 'rancherlab record' first")
        self.cmd = cmd
        self.recording = recording
        self.schedule = schedule or CheckSchedule()
        self.seed, self.host, self.port = seed, host, port
        self.rancher_version = rancher_version
        from ..simulator.profiles import LATEST, profile_for

        self.profile = profile_for(rancher_version) if rancher_version else LATEST
        self.client_output = client_output
        self.on_ready = on_ready
        self.env = dict(os.environ if env is None else env)

    def run(self) -> CheckReport:
        from ..simulator import Simulator, generate_token

        token = generate_token()
        upstream: Any
        sim: Any = None
        if self.recording is not None:
            from ..replayserver import ReplayServer

            ping = self.schedule.ping
            upstream = (
                ReplayServer(self.recording, token=token, norman_ping=ping, steve_ping=ping)
                if ping
                else ReplayServer(self.recording, token=token)
            )
        else:
            options: dict[str, Any] = {"rate": self.schedule.rate, "buffer": 10_000_000}
            if self.schedule.ping:
                options.update(norman_ping=self.schedule.ping, steve_ping=self.schedule.ping)
            if self.rancher_version:
                options["rancher_version"] = self.rancher_version
            upstream = sim = Simulator(self.seed, token=token, **options)
        loop = LoopThread("rancherlab-client-check")
        with tempfile.TemporaryDirectory(prefix="rancherlab-check-") as work, upstream:
            proxy = FaultProxy(
                upstream.url, secrets=_secrets(token), host=self.host, port=self.port, profile=self.profile
            )
            loop.start()
            try:
                loop.call(proxy.start())
                state_file = Path(work) / "state.jsonl"
                if self.on_ready is not None:
                    self.on_ready(proxy.url, token)
                process = self._start_client(proxy.url, token, state_file) if self.cmd else None
                try:
                    budget = self._budget()
                    loop.call(self._schedule(proxy, sim, process), timeout=budget)
                    state = loop.call(self._state(upstream.url, token, proxy, state_file), timeout=60)
                finally:
                    client_exit = _stop(process)
                obs = tuple(proxy.observations)
                return CheckReport(
                    tuple(evaluate(obs, dialect=proxy.dialect, state=state)), proxy.dialect, obs, client_exit
                )
            finally:
                if loop.alive:
                    loop.call(proxy.stop(), timeout=30)
                loop.stop()

    def _budget(self) -> float:
        s = self.schedule
        return s.connect_timeout + 3 * s.reconnect_timeout + s.settle + 7 * s.window + s.stall + s.down + s.final + 120

    def _start_client(self, url: str, token: str, state_file: Path) -> subprocess.Popen[bytes]:
        assert self.cmd is not None
        env = {**self.env, "RANCHER_URL": url, "RANCHER_TOKEN_KEY": token, STATE_FILE_ENV: str(state_file)}
        out = self.client_output or sys.stderr
        try:
            return subprocess.Popen(
                shlex.split(self.cmd), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        except OSError as exc:
            raise UsageError(f"cannot start the client {self.cmd!r}: {exc.strerror}") from None

    async def _schedule(self, proxy: FaultProxy, sim: Any, process: subprocess.Popen[bytes] | None) -> None:
        s = self.schedule

        async def pause(seconds: float) -> bool:
            """Wait; False when the client process is gone (nothing more to observe)."""
            end = asyncio.get_running_loop().time() + seconds
            while asyncio.get_running_loop().time() < end:
                if process is not None and process.poll() is not None:
                    return False
                await asyncio.sleep(min(0.05, seconds))
            return True

        waited = 0.0
        while proxy.dialect is None:
            if waited >= s.connect_timeout or (process is not None and process.poll() is not None):
                return
            await asyncio.sleep(0.05)
            waited += 0.05

        async def reconnected() -> bool:
            """Wait until the client has a socket again (the backoff may be long); False if it never does."""
            waited = 0.0
            while proxy.connected == 0:
                if waited >= s.reconnect_timeout or not await pause(0.05):
                    return False
                waited += 0.05
            return True

        async def burst() -> None:
            proxy.burst_noted(s.burst)
            await asyncio.to_thread(sim.step, s.burst)

        # (fault, whether the client must come back before the next one)
        steps: list[tuple[Callable[[], Any], bool]] = [
            (lambda: _now(proxy.drop), True),
            (lambda: proxy.stall(s.stall), True),
            (lambda: proxy.restart(s.down), True),
        ]
        if proxy.dialect == "steve":
            steps += [(lambda: proxy.expire(), False), (lambda: proxy.expire("too-old"), False)]
            steps += [(lambda: proxy.expire("start-stop"), False)]
        if sim is not None and s.burst:
            steps.append((burst, False))
        if not await pause(s.settle):
            return
        for step, comes_back in steps:
            await step()
            if comes_back and not await reconnected():
                break
            if not await pause(s.window):
                return
        if sim is not None:
            sim.config.rate = 0  # the world stands still, so the client's state can be compared
        proxy.note("fault", name="end")
        await pause(s.final)

    async def _state(
        self, upstream: str, token: str, proxy: FaultProxy, state_file: Path
    ) -> dict[str, tuple[set[str], set[str]]] | None:
        """What the client wrote it holds, and a fresh list of the same types from the server."""
        held = _read_state(state_file)
        if held is None:
            return None
        from ..credentials import resolve_server
        from ..rest import RestClient
        from ..scope import Scope, parse_server_url

        path = next((str(o.detail["path"]) for o in proxy.observations if o.kind == "connected"), "/v1/subscribe")
        scope = parse_server_url(upstream + path).scope or Scope.parse("steve")
        server = resolve_server(upstream, token, env={}, cli_config=False)
        out: dict[str, tuple[set[str], set[str]]] = {}
        async with RestClient(server) as rest:
            for typ, ids in held.items():
                listing = await rest.list_objects(scope, typ)
                out[typ] = (ids, {str(o.get("id")) for o in listing.items})
        return out


def _now(fn: Callable[[], None]) -> Any:
    async def run() -> None:
        fn()

    return run()


def _secrets(token: str) -> tuple[str, ...]:
    _access, _, secret = token.partition(":")
    return (token, secret) if secret else (token,)


def _read_state(path: Path) -> dict[str, set[str]] | None:
    if not path.exists():
        return None
    held: dict[str, set[str]] = {}
    with path.open("rb") as f:
        for line in f:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line being written when the check read the file
            if isinstance(doc, dict) and isinstance(doc.get("type"), str) and isinstance(doc.get("ids"), list):
                held[doc["type"]] = {str(i) for i in doc["ids"]}
    return held or None


def _stop(process: subprocess.Popen[bytes] | None) -> int | None:
    """End the client (SIGTERM to its process group, SIGKILL after 5 s); its exit code."""
    if process is None:
        return None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
            process.wait(5)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    return process.poll()


__all__ = ["CHECKS", "STATE_FILE_ENV", "CheckReport", "CheckResult", "CheckSchedule", "ClientCheck"]
