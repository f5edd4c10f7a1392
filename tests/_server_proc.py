"""A server (`serve` or `simulate`) in a process of its own, for the hostile-client battery.

Its event loop runs in asyncio's debug mode with `slow_callback_duration` 0.1 s, so a callback or a loop that
holds the loop is reported whatever input made it do so. It prints `READY <url>` once listening, then answers
commands on stdin, each answered *from the server's event loop* (so an answer also proves the loop is free):

- `slow`: `SLOW <n>` and the slow-callback reports since the last `slow`, one per line, then `END` (a report counts when the
  callback also spent 0.1 s on the CPU; see `_measure_cpu`);
- `trace`: starts tracemalloc (from then on, allocations are traced);
- `mem`: `MEM <bytes>`, the memory traced since `trace`, after a full collection;
- `blocks`: `BLOCKS <n>`, the objects' memory blocks the interpreter holds after a full collection (no tracing
  overhead, so a burst of connections is handled at full speed);
- `quit`: stops the server.

usage: python -m tests._server_proc replay RECORDING [--loop] [--speed S]
       python -m tests._server_proc simulate
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import threading
import time
import tracemalloc
from typing import Any

from rancherlab.replayserver import AsyncReplayServer, ReplayOptions
from rancherlab.simulator import SimulatorConfig, SimulatorServer, World

SLOW_CALLBACK = 0.1  # seconds


_last_cpu = [0.0]  # CPU seconds the loop's thread spent in the callback that ran last


def _measure_cpu() -> None:
    """Note the thread CPU time of every callback the loop runs, next to asyncio's wall-clock measure.

    asyncio logs a slow callback right after running it, from wall time; on a machine shared with other work a
    callback can take 0.1 s of wall time without doing anything (the process was not scheduled). What holds the
    loop — a loop that spins, a step that does too much — spends that time on the CPU, so a report counts when
    the callback also used SLOW_CALLBACK of CPU time.
    """
    original = asyncio.events.Handle._run

    def run(self: asyncio.events.Handle) -> None:
        start = time.thread_time()
        try:
            original(self)
        finally:
            _last_cpu[0] = time.thread_time() - start

    asyncio.events.Handle._run = run  # type: ignore[method-assign]


class _Slow(logging.Handler):
    """Collects asyncio's debug-mode reports of callbacks that held the loop longer than SLOW_CALLBACK."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []
        self.contended: list[str] = []  # slow by the wall clock only: the machine was busy elsewhere

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "took" in text and "seconds" in text:
            cpu = _last_cpu[0]
            report = f"{text.replace(chr(10), ' ')[:300]} (cpu {cpu:.3f} s)"
            (self.reports if cpu >= SLOW_CALLBACK else self.contended).append(report)


def _answer(command: str, slow: _Slow) -> str:
    if command == "slow":
        reports, slow.reports = slow.reports, []  # each probe answers for the time since the previous one
        return "\n".join([f"SLOW {len(reports)}", *reports, "END"])
    if command == "trace":
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        return "TRACING"
    if command == "blocks":
        gc.collect()
        return f"BLOCKS {sys.getallocatedblocks()}"
    if command == "mem":
        gc.collect()
        return f"MEM {tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else -1}"
    return "?"


async def main(args: argparse.Namespace) -> None:
    _measure_cpu()
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = SLOW_CALLBACK
    slow = _Slow()
    logging.getLogger("asyncio").addHandler(slow)
    server: Any
    if args.what == "replay":
        server = AsyncReplayServer(args.recording, ReplayOptions(speed=args.speed, loop=args.loop))
    else:
        world = World(3)
        # a short history, so what the world keeps over time is at its bound within the battery's seconds
        config = SimulatorConfig(token=args.token, rate=args.rate, count_interval=0.3, history_limit=100)
        server = SimulatorServer(world, config)
    await server.start()
    print(f"READY {server.url}", flush=True)
    done = asyncio.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            future = asyncio.run_coroutine_threadsafe(_reply(command, slow), loop)
            print(future.result(), flush=True)
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=read_commands, daemon=True).start()
    await done.wait()
    await server.stop()


async def _reply(command: str, slow: _Slow) -> str:
    return _answer(command, slow)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["replay", "simulate"])
    parser.add_argument("recording", nargs="?")
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--token", default="token-battr:battery")
    arguments = parser.parse_args()
    asyncio.run(main(arguments), debug=True)
