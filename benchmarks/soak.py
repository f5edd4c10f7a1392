"""`make soak`: a capture held for a long time at a high event rate through regular 1006 drops; its memory must stay
flat and nothing may be lost.

The server is a fast Steve of its own, in a child process (so the measured RSS is the capture's alone): one
`pod` watch over 1,000 objects changed, removed and created at `rate` events a second, with apiserver's messages
(`resource.start`, resume from a revision out of a retained log, "too old" before it, `resource.stop` for a reader
that falls 5,000 events behind), a ping every 5 s, and every socket cut without a close frame every `drop_every`
seconds. The simulator keeps every change it ever made and formats whole objects per event, which neither lasts
30 minutes at 1,000 events/s nor would leave the client's memory to measure alone.

The client is `rancherlab.capture` recording to a file, as a user runs it. Checked at the end:

* RSS growth after the warm-up: the mean of the last 3 s of samples against the mean of the 3 s after the warm-up
  (which includes a drop and a resume, so the buffers of both exist by then); must stay under 10 %;
* nothing lost: every revision the server produced after the stream's first watch is in the recording as a frame,
  and the state rebuilt from the recording equals the server's listing once it is paused.

Parameters: `SOAK_SECONDS` (1800), `SOAK_RATE` (1000 events/s), `SOAK_DROP_EVERY` (60 s), `SOAK_WARMUP`
(default: the first drop plus 5 s, at most 120 s), or the same as options: `--seconds 45 --rate 1000 --drop-every 10`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

OBJECTS = 1000
RETAIN = 20_000  # events kept for resumes: 20 s at 1,000 events/s, far more than a reconnect takes
READER_BUFFER = 5_000  # events queued for one socket before its watch is stopped (a slow reader)
PING_EVERY = 5.0
VERSION = "v2.12.0"
GROWTH_LIMIT = 0.10


# --- the server (child process) -----------------------------------------------------------------------------------


class FastSteve:
    """A Steve `/v1/subscribe` for one type, fast enough for 1,000 events/s for hours, with bounded memory."""

    def __init__(self, rate: float, drop_every: float | None, seed: int = 1) -> None:
        from rancherlab.protocol import steve

        self.steve = steve
        self.rate = rate
        self.drop_every = drop_every
        self.rng = random.Random(seed)
        self.revision = 1000
        self.objects: dict[str, dict[str, Any]] = {}
        for i in range(OBJECTS):
            self._set(i, self._obj(i))
        self.log: deque[tuple[int, str]] = deque(maxlen=RETAIN)
        self.watchers: dict[ServerConnection, Any] = {}  # socket -> its Outbox, while its pod watch runs
        self.first_watch: int | None = None  # the revision the first watch started from
        self.paused = False
        self.drops = 0
        self.stops = 0
        self._outboxes: dict[ServerConnection, Any] = {}  # every open socket's send path
        self._tasks: list[asyncio.Task[None]] = []

    def _obj(self, i: int) -> dict[str, Any]:
        self.revision += 1
        name = f"pod-{i:04d}"
        return {
            "id": f"soak/{name}",
            "type": "pod",
            "metadata": {
                "name": name,
                "namespace": "soak",
                "resourceVersion": str(self.revision),
                "labels": {"app": f"app-{i % 17}", "tier": "web"},
                "state": {"name": self.rng.choice(("running", "pending", "terminating")), "error": False},
            },
            "spec": {"containers": [{"name": "main", "image": f"registry.example/app:{self.rng.randrange(100)}"}]},
            "status": {"phase": "Running", "restartCount": self.rng.randrange(5)},
        }

    def _set(self, i: int, obj: dict[str, Any] | None) -> None:
        name = f"pod-{i:04d}"
        if obj is None:
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj

    def event(self) -> tuple[int, str]:
        """One change of the world: its revision and its message text."""
        i = self.rng.randrange(OBJECTS)
        name = f"pod-{i:04d}"
        if name in self.objects and self.rng.random() < 0.05:
            self.revision += 1
            gone = {**self.objects[name]}
            gone["metadata"] = {**gone["metadata"], "resourceVersion": str(self.revision)}
            self._set(i, None)
            verb, obj = "resource.remove", gone
        else:
            verb = "resource.change" if name in self.objects else "resource.create"
            obj = self._obj(i)
            self._set(i, obj)
        text = self.steve.encode_event(verb, data=obj, revision=str(self.revision), echo={"resourceType": "pod"})
        self.log.append((self.revision, text))
        return self.revision, text

    async def run(self) -> None:
        from rancherlab._wsserver import every

        server = await serve(self._handler, "127.0.0.1", 0, process_request=self._http, ping_interval=None)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        self._tasks.append(every(PING_EVERY, self._ping))
        if self.drop_every:
            self._tasks.append(every(self.drop_every, self._drop))
        async with server:
            await self._generate()

    async def _generate(self) -> None:
        loop = asyncio.get_running_loop()
        start, done, tick = loop.time(), 0, 0.01
        while True:
            await asyncio.sleep(tick)
            if self.paused:
                continue
            due = int((loop.time() - start) * self.rate) - done
            if due > self.rate * 0.1:  # fell behind (a busy machine): skip, never burst
                done += due - int(self.rate * 0.1)
                due = int(self.rate * 0.1)
            for _ in range(max(0, due)):
                _, text = self.event()
                for conn, outbox in list(self.watchers.items()):
                    self._offer(conn, outbox, text)
            done += max(0, due)

    def _offer(self, conn: ServerConnection, outbox: Any, text: str) -> None:
        if not outbox.offer(text):  # a reader this far behind: apiserver stops the watch
            self.watchers.pop(conn, None)
            self.stops += 1
            outbox.push(self.steve.stop_event({"resourceType": "pod"}))

    def _ping(self) -> None:
        for outbox in list(self._outboxes.values()):
            outbox.push(self.steve.ping(VERSION))

    def _drop(self) -> None:
        self.drops += 1
        for outbox in list(self._outboxes.values()):
            outbox.abort()

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if path == "/soak/pause":
            self.paused = True
            body: Any = {
                "revision": self.revision,
                "first_watch": self.first_watch,
                "drops": self.drops,
                "stops": self.stops,
            }
        elif path == "/v1/pod" or path == "/v1/pods":
            body = {"type": "collection", "revision": str(self.revision), "data": list(self.objects.values())}
        elif path == "/v3/settings/server-version":
            body = {"id": "server-version", "type": "setting", "value": VERSION}
        else:
            return _json(404, {"type": "error", "status": 404, "code": "NotFound", "message": "not found"})
        return _json(200, body)

    async def _handler(self, connection: ServerConnection) -> None:
        from rancherlab._wsserver import Outbox

        outbox = Outbox(connection, capacity=READER_BUFFER)
        self._outboxes[connection] = outbox
        try:
            async for message in connection:
                self._receive(connection, outbox, message)
        except ConnectionClosed:
            pass
        finally:
            self.watchers.pop(connection, None)
            self._outboxes.pop(connection, None)
            await outbox.close()

    def _receive(self, conn: ServerConnection, outbox: Any, message: str | bytes) -> None:
        steve = self.steve
        sub = steve.decode_subscribe(message)
        echo = {"resourceType": "pod"}
        if sub.stop:
            if self.watchers.pop(conn, None) is not None:
                outbox.push(steve.stop_event(echo))
            return
        if conn in self.watchers:
            return
        outbox.push(steve.start_event(echo))
        rv = int(sub.resource_version) if sub.resource_version.isdigit() else None
        if rv is not None:
            if self.first_watch is None:
                self.first_watch = rv
            oldest = self.log[0][0] if self.log else self.revision + 1
            if rv < oldest - 1:
                outbox.push(steve.error_event(f"event watch error: too old resource version: {rv} ({oldest})", echo))
                outbox.push(steve.stop_event(echo))
                return
            self.watchers[conn] = outbox
            for rev, text in list(self.log):
                if rev > rv:
                    self._offer(conn, outbox, text)
        else:
            self.watchers[conn] = outbox


def _json(status: int, body: Any) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(data)), "Connection": "close"})
    return Response(status, "OK" if status == 200 else "Not Found", headers, data)


# --- the client (this process) ------------------------------------------------------------------------------------


@dataclass
class SoakResult:
    seconds: float
    rate: float
    drop_every: float | None
    events_recorded: int
    resource_frames: int
    frames_per_second: float
    drops: int
    reconnects: int
    watch_stops: int
    rss_warm_mb: float
    rss_end_mb: float
    rss_max_mb: float
    growth: float  # (end - warm) / warm
    revisions_expected: int
    revisions_missing: int
    state_equal: bool

    @property
    def ok(self) -> bool:
        return self.growth < GROWTH_LIMIT and self.revisions_missing == 0 and self.state_equal

    def line(self) -> str:
        return (
            f"soak: {self.seconds:g} s at {self.rate:g} events/s, a drop every {self.drop_every:g} s: "
            f"{self.resource_frames} resource frames ({self.frames_per_second:.0f}/s), {self.drops} drops, "
            f"{self.reconnects} reconnects, {self.watch_stops} watch stops; RSS {self.rss_warm_mb:.1f} MB after the "
            f"warm-up, {self.rss_end_mb:.1f} MB at the end (max {self.rss_max_mb:.1f}): growth {self.growth:+.1%}; "
            f"revisions missing {self.revisions_missing} of {self.revisions_expected}; "
            f"state {'equals' if self.state_equal else 'DIFFERS FROM'} the server's"
        )


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _mean(xs: list[int]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def run_soak(
    seconds: float, rate: float = 1000.0, drop_every: float | None = 60.0, *, warmup: float | None = None
) -> SoakResult:
    """Run the soak (see the module docstring) and return what it measured; asserts nothing."""
    import rancherlab as rl
    from rancherlab.protocol.objects import ObjectMirror
    from rancherlab.recording import read_recording
    from rancherlab.stream import StreamOptions

    if warmup is None:
        warmup = min(120.0, (drop_every or 0) + 5.0, seconds / 3)
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "serve", "--rate", str(rate), "--drop-every", str(drop_every or 0)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline().split()[1])
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "soak.jsonl"
            options = StreamOptions(liveness=3 * PING_EVERY, backoff_initial=0.2, backoff_max=1.0)
            cap = rl.capture(
                url,
                "steve",
                types=["pod"],
                credentials="token-soak0:soaksoaksoaksoaksoaksoaksoak",
                record=path,
                max_events=1000,
                options=options,
                env={},
                cli_config=False,
            )
            samples: list[tuple[float, int]] = []
            t0 = time.monotonic()
            while (now := time.monotonic() - t0) < seconds:
                samples.append((now, rss_bytes()))
                if cap.stats.state == "failed":
                    break
                time.sleep(1.0)
            with httpx.Client(base_url=url, trust_env=False) as http:
                paused = http.get("/soak/pause").json()
                time.sleep(2.0)  # what is in flight arrives
                listing = http.get("/v1/pod").json()["data"]
            cap.stop()
            if cap.error is not None:
                raise cap.error
            stats = cap.stats
            warm = [r for t, r in samples if warmup <= t < warmup + 3] or [samples[-1][1]]
            end = [r for t, r in samples if t >= samples[-1][0] - 3]
            after = [r for t, r in samples if t >= warmup]
            seen: set[int] = set()
            mirror = ObjectMirror("steve")
            for event in read_recording(path):
                if event.kind == "frame" and event.is_resource and event.revision and event.revision.isdigit():
                    seen.add(int(event.revision))
                mirror.apply(event)
            first = int(paused["first_watch"] or paused["revision"])
            expected = range(first + 1, int(paused["revision"]) + 1)
            missing = sum(1 for r in expected if r not in seen)
            truth = {("pod", o["id"]): o for o in listing}
            return SoakResult(
                seconds=seconds,
                rate=rate,
                drop_every=drop_every,
                events_recorded=stats.recorded,
                resource_frames=stats.resource_frames,
                frames_per_second=stats.resource_frames / seconds,
                drops=int(paused["drops"]),
                reconnects=max(0, stats.connections - 1),
                watch_stops=int(paused["stops"]),
                rss_warm_mb=_mean(warm) / 1e6,
                rss_end_mb=_mean(end) / 1e6,
                rss_max_mb=max(after or [0]) / 1e6,
                growth=(_mean(end) - _mean(warm)) / _mean(warm),
                revisions_expected=len(expected),
                revisions_missing=missing,
                state_equal=mirror.objects == truth,
            )
    finally:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(5)
        if child.poll() is None:
            child.kill()
            child.wait(5)
        if child.stdout is not None:
            child.stdout.close()


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=("run", "serve"), default="run")
    parser.add_argument("--seconds", type=float, default=_env_float("SOAK_SECONDS", 1800))
    parser.add_argument("--rate", type=float, default=_env_float("SOAK_RATE", 1000))
    parser.add_argument("--drop-every", type=float, default=_env_float("SOAK_DROP_EVERY", 60))
    parser.add_argument("--warmup", type=float, default=_env_float("SOAK_WARMUP", 0) or None)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        asyncio.run(FastSteve(args.rate, args.drop_every or None).run())
        return 0
    result = run_soak(args.seconds, args.rate, args.drop_every or None, warmup=args.warmup)
    print(result.line())
    print(json.dumps(asdict(result)))
    if not result.ok:
        print(f"soak FAILED: RSS growth must stay under {GROWTH_LIMIT:.0%} and nothing may be lost", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
