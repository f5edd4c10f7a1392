"""The per-connection send path: one writer task, a bounded buffer for resource events, and the faults."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed


class Outbox:
    """Everything a connection sends goes through here, in order, from one task.

    Resource events are bounded like Rancher's per-subscriber channel (100 items): `offer` returns
    False when the buffer is full, and the caller decides what a slow consumer costs (Norman drops
    the socket, Steve stops the watch). Control messages (pings, start/stop/error) are never refused.
    """

    def __init__(self, connection: ServerConnection, *, capacity: int = 100) -> None:
        self.connection = connection
        self.capacity = capacity
        self._queue: deque[tuple[str, bool]] = deque()
        self._bounded = 0
        self._wakeup = asyncio.Event()
        self.stalled = False
        self.sent = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def offer(self, text: str) -> bool:
        """Queue a resource event unless the buffer is full."""
        if self._bounded >= self.capacity:
            return False
        self._bounded += 1
        self._queue.append((text, True))
        self._wakeup.set()
        return True

    def push(self, text: str) -> None:
        """Queue a control message; never refused."""
        self._queue.append((text, False))
        self._wakeup.set()

    @property
    def full(self) -> bool:
        return self._bounded >= self.capacity

    def stall(self) -> None:
        """Keep the TCP connection open and send nothing more, as a hung proxy or server would."""
        self.stalled = True

    def abort(self) -> None:
        """Close the TCP connection without a close frame: the client sees 1006, as with gorilla's Close."""
        self.stalled = True
        transport = self.connection.transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError, OSError):
            while True:
                while not self._queue or self.stalled:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                text, bounded = self._queue.popleft()
                if bounded:
                    self._bounded -= 1
                await self.connection.send(text)
                self.sent += 1

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def every(interval: float, fn: Callable[[], None]) -> asyncio.Task[None]:
    """Call `fn` every `interval` seconds (first call after one interval) until cancelled."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            fn()

    return asyncio.get_running_loop().create_task(loop())
