"""asyncio event loops on daemon threads: the async core behind rancherlab's synchronous faces.

A loop of our own on a thread of its own works the same in a script, a test or a notebook (whose loop
is already running, and on ipykernel 7 does not run between cells). `LoopThread` is one such loop with
start/call/run/stop, as the simulator and replay-server handles each own one; `shared()` is the one
process-wide loop that captures and the Explorer run on, started on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, Protocol, Self, TypeVar

T = TypeVar("T")


class _AsyncServer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=_AsyncServer)


class LoopThread:
    """An asyncio event loop running forever on a daemon thread once started."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def is_current(self) -> bool:
        """True on the loop's own thread (where blocking on the loop would deadlock)."""
        return threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the thread and return once its loop runs."""
        self._thread.start()
        self._ready.wait()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        """Run a coroutine on the loop and wait for its result from this (other) thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], T], timeout: float | None = 30) -> T:
        """Call `fn` on the loop's thread (where a server's state lives) and return its result."""
        future: Future[T] = Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - whatever happens is handed to the caller's thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return future.result(timeout)

    def stop(self) -> None:
        """Cancel what still runs (so no coroutine is left to die with the loop), then stop and close the loop."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(_cancel_others(), timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


async def _cancel_others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=4)


class ServerHandle(Generic[S]):
    """A server's async core on a loop of its own, as a synchronous handle and context manager.

    The simulator and the replay server share this life cycle: start the loop, start the server on it
    (stopping the loop again if that fails, e.g. a port in use), and stop both on close.
    """

    what = "server"

    def __init__(self, thread_name: str) -> None:
        self._runner = LoopThread(thread_name)
        self._server: S | None = None

    def _make(self) -> S:
        raise NotImplementedError

    @property
    def _running(self) -> S:
        if self._server is None:
            raise RuntimeError(f"the {self.what} is not running: call start() or use it as a context manager")
        return self._server

    def start(self) -> Self:
        self._runner.start()
        server = self._make()
        try:
            self._runner.call(server.start())
        except BaseException:
            self._runner.stop()
            raise
        self._server = server
        return self

    def close(self) -> None:
        if self._server is not None and self._runner.alive:
            self._runner.call(self._server.stop())
        self._runner.stop()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared_lock = threading.Lock()
_shared: LoopThread | None = None


def shared() -> LoopThread:
    """rancherlab's own loop for the process, started on first use (and again if its thread has died)."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            runner = LoopThread("rancherlab-loop")
            runner.start()
            _shared = runner
        return _shared


def on_shared() -> bool:
    """True when called on the shared loop's thread."""
    runner = _shared
    return runner is not None and runner.is_current()


__all__ = ["LoopThread", "ServerHandle", "on_shared", "shared"]
