"""Bounded-memory queues for the receive path: the reader never waits, and the heap never holds the backlog.

`Spool` is the queue of received frames between the socket reader and the processing loop (parse, redact,
stamp). Up to `memory_bytes` of frames wait in memory; beyond that, newer frames wait in a spool file and
are read back in order once the older ones are taken. A frame holds whatever Rancher sent, secrets
included, and redaction happens after the spool (processing is what may fall behind), so every frame is
encrypted before it touches the disk: AES-256-GCM (the `cryptography` package) with a random key made
for this spool, kept only in this process's memory and never written anywhere. The file is created
0600, and deleted when the spool closes; after a crash (`kill -9`) what is left is unreadable, and the
next spool opened in that directory deletes it.

`EventQueue` is the queue of processed events between the stream and its consumer; it counts the raw
text its events hold, so the processing loop can wait for room (`wait_room`) without the reader waiting.

Both are `asyncio.Queue`s (the `_init`/`_put`/`_get` hooks `PriorityQueue` uses), so code written for a
queue keeps working; their `repr` never shows their contents.
"""

from __future__ import annotations

import asyncio
import os
import struct
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final, Generic, TypeVar

from .errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

T = TypeVar("T")

# Per record on disk: ciphertext length, kind, the monotonic time the frame was read.
_RECORD: Final = struct.Struct("<IBd")
_STR: Final = 0
_BYTES: Final = 1
_OBJECT: Final = 2  # a non-frame item (the reader's end marker): kept in memory, in its place in the order
_OVERHEAD: Final = 96  # bytes of heap an item costs beside its text (object header, tuple, deque slot)
_MAX_CHUNK: Final = 1024 * 1024
_MIN_CHUNK: Final = 16 * 1024
_LAG_POLL: Final = 0.005  # seconds between looks while the reader waits for the backlog to shrink
SPOOL_PREFIX: Final = "rancherlab-spool-"


_monotonic = time.monotonic


class Spool(asyncio.Queue[T], Generic[T]):
    """A FIFO of received frames (`str` or `bytes`; other items are kept as they are) in bounded memory.

    `put_nowait` never blocks and never fails for want of memory: once the items in memory reach
    `memory_bytes` (and until the disk part is drained), new items go to an encrypted spool file in
    `directory` (default: the system's temporary directory). Items come out in the order they went in.
    `gate`, if given, is awaited before each `get` (the stream waits there for room downstream).
    `close()` deletes the file; the spool must not be used after it.
    """

    def __init__(
        self,
        memory_bytes: int,
        *,
        directory: str | os.PathLike[str] | None = None,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if memory_bytes <= 0:
            raise UsageError("memory_bytes must be a positive number of bytes")
        self._chunk = max(_MIN_CHUNK, min(_MAX_CHUNK, memory_bytes // 8))
        # the read and write buffers of the disk part are counted in the limit too
        self._limit = max(memory_bytes - 2 * self._chunk, _MIN_CHUNK)
        self._directory = directory
        self._gate = gate
        self._mem: deque[tuple[float, T]] = deque()
        self._mem_bytes = 0
        self._peak_mem_bytes = 0
        self._objects: deque[T] = deque()  # non-frame items that arrived while the disk part was in use
        self._disk_count = 0
        self._disk_head_time = 0.0
        self.spilled = 0  # items that went through the disk, over the spool's life
        self.path: Path | None = None
        self._file: BinaryIO | None = None
        self._aead: AESGCM | None = None
        self._wnonce = 0
        self._rnonce = 0
        self._wbuf = bytearray()
        self._file_size = 0
        self._roff = 0
        self._rbuf = b""
        self._rpos = 0
        super().__init__()

    # --- asyncio.Queue hooks ---------------------------------------------------------------------------

    def _init(self, maxsize: int) -> None:
        pass  # state is set up in __init__

    def _put(self, item: T) -> None:
        now = _monotonic()
        size = (len(item) if isinstance(item, (str, bytes)) else 0) + _OVERHEAD
        if not self._disk_count and self._mem_bytes + size <= self._limit:
            self._mem.append((now, item))
            self._mem_bytes += size
            self._peak_mem_bytes = max(self._peak_mem_bytes, self._mem_bytes)
            return
        self._to_disk(item, now)

    def _get(self) -> T:
        if self._mem:
            _, item = self._mem.popleft()
            self._mem_bytes -= (len(item) if isinstance(item, (str, bytes)) else 0) + _OVERHEAD
            return item
        return self._from_disk()

    def qsize(self) -> int:
        return len(self._mem) + self._disk_count

    def empty(self) -> bool:
        return not self._mem and not self._disk_count

    def full(self) -> bool:
        return False

    def _format(self) -> str:
        return f"items={self.qsize()} memory={self._mem_bytes} spilled={self.spilled}"

    async def get(self) -> T:
        if self._gate is not None:
            await self._gate()
        return await super().get()

    # --- backlog -----------------------------------------------------------------------------------

    @property
    def memory_bytes(self) -> int:
        """Bytes the items waiting in memory take, about (text plus a fixed overhead per item)."""
        return self._mem_bytes

    @property
    def peak_memory_bytes(self) -> int:
        return self._peak_mem_bytes

    @property
    def disk_bytes(self) -> int:
        """Bytes of the spool file still to be read (plus what waits in its write buffer)."""
        return self._file_size - self._roff + len(self._wbuf)

    def age(self, now: float | None = None) -> float:
        """Seconds the oldest waiting item has waited (0 when empty); for an item on disk, a little more."""
        if self._mem:
            head = self._mem[0][0]
        elif self._disk_count:
            head = self._disk_head_time
        else:
            return 0.0
        return (time.monotonic() if now is None else now) - head

    async def wait_age(self, max_age: float) -> None:
        """Return once the oldest waiting item has waited at most `max_age` seconds (at once if so now)."""
        while self.age() > max_age:
            await asyncio.sleep(_LAG_POLL)

    def close(self) -> None:
        """Drop what waits and delete the spool file."""
        self._mem.clear()
        self._objects.clear()
        self._mem_bytes = self._disk_count = 0
        self._wbuf = bytearray()
        self._rbuf = b""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._aead = None

    def __del__(self) -> None:
        if self._file is not None:
            self.close()

    # --- the disk part -----------------------------------------------------------------------------

    def _open(self) -> None:
        directory = Path(self._directory or tempfile.gettempdir())
        _sweep(directory)
        fd, name = tempfile.mkstemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", suffix=".bin", dir=directory)  # 0600
        self._file, self.path = os.fdopen(fd, "r+b", buffering=0), Path(name)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only once a backlog spills (22 ms)

        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def _to_disk(self, item: T, now: float) -> None:
        if self._file is None:
            self._open()
        assert self._aead is not None
        if isinstance(item, str):
            kind, payload = _STR, item.encode("utf-8", "surrogatepass")
        elif isinstance(item, bytes):
            kind, payload = _BYTES, item
        else:
            kind, payload = _OBJECT, b""
            self._objects.append(item)
        if kind != _OBJECT:
            nonce = self._wnonce.to_bytes(12, "little")
            self._wnonce += 1
            head = _RECORD.pack(len(payload) + 16, kind, now)
            payload = self._aead.encrypt(nonce, payload, head)
        else:
            head = _RECORD.pack(0, kind, now)
        if self._disk_count == 0:
            self._disk_head_time = now
        self._disk_count += 1
        self.spilled += 1
        self._wbuf += head
        self._wbuf += payload
        if len(self._wbuf) >= self._chunk:
            self._write_out()

    def _write_out(self) -> None:
        assert self._file is not None
        self._file.seek(self._file_size)
        view = memoryview(self._wbuf)
        while view:
            n = self._file.write(view) or 0
            self._file_size += n
            view = view[n:]
        view.release()
        self._wbuf.clear()

    def _fill(self, n: int) -> memoryview:
        """The next `n` unread bytes of the disk part (file first, then the write buffer)."""
        assert self._file is not None
        while len(self._rbuf) - self._rpos < n:
            rest = self._rbuf[self._rpos :]
            if self._roff < self._file_size:
                want = max(self._chunk, n - len(rest))
                self._file.seek(self._roff)
                more = self._file.read(min(want, self._file_size - self._roff))
                self._roff += len(more)
            else:
                more, self._wbuf = bytes(self._wbuf), bytearray()  # newest records, never written out
            if not more:
                raise RuntimeError("spool file ended early")  # a bug, never expected
            self._rbuf, self._rpos = rest + more, 0
        view = memoryview(self._rbuf)[self._rpos : self._rpos + n]
        self._rpos += n
        return view

    def _from_disk(self) -> T:
        assert self._aead is not None
        head = bytes(self._fill(_RECORD.size))
        length, kind, read_at = _RECORD.unpack(head)
        self._disk_head_time = read_at  # the next one was read after this one: a close, safe estimate
        self._disk_count -= 1
        if kind == _OBJECT:
            item = self._objects.popleft()
        else:
            nonce = self._rnonce.to_bytes(12, "little")
            self._rnonce += 1
            plain = self._aead.decrypt(nonce, bytes(self._fill(length)), head)
            item = plain.decode("utf-8", "surrogatepass") if kind == _STR else plain  # type: ignore[assignment]
        if self._disk_count == 0:
            self._reset_disk()
        return item

    def _reset_disk(self) -> None:
        """All read: start the file over (the nonce counters go on, so no nonce is ever used twice)."""
        assert self._file is not None
        self._file.truncate(0)
        self._file_size = self._roff = self._rpos = 0
        self._rbuf = b""
        self._wbuf.clear()


def _sweep(directory: Path) -> None:
    """Delete the spool files that processes no longer running left behind (a `kill -9`); they are
    unreadable without their key, which died with them, but may be large. POSIX only (process check)."""
    if os.name != "posix":
        return
    try:
        names = [p for p in directory.iterdir() if p.name.startswith(SPOOL_PREFIX) and p.suffix == ".bin"]
    except OSError:
        return
    for path in names:
        pid = path.name[len(SPOOL_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except OSError:
            continue  # alive (someone else's process) or not ours to judge


class EventQueue(asyncio.Queue[T], Generic[T]):
    """A FIFO of processed events that never blocks `put_nowait`, and tells when it holds `limit_bytes` of raw
    text or more (`has_room`, `wait_room`), so its producer can pause there instead of growing it."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise UsageError("limit_bytes must be a positive number of bytes")
        self._limit = limit_bytes
        self._bytes = 0
        self._items: deque[tuple[int, T]] = deque()
        self._room = asyncio.Event()
        super().__init__()

    def _init(self, maxsize: int) -> None:
        pass

    def _put(self, item: T) -> None:
        raw = getattr(item, "raw", None)
        size = (len(raw) if isinstance(raw, str) else 0) + _OVERHEAD
        self._items.append((size, item))
        self._bytes += size

    def _get(self) -> T:
        size, item = self._items.popleft()
        self._bytes -= size
        if self._bytes < self._limit:
            self._room.set()
        return item

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def _format(self) -> str:
        return f"items={len(self._items)} bytes={self._bytes}"

    def has_room(self) -> bool:
        return self._bytes < self._limit

    async def wait_room(self) -> None:
        """Return once the queue holds less than its limit (at once if it does now)."""
        while self._bytes >= self._limit:
            self._room.clear()
            await self._room.wait()


def queue_limits(backlog_bytes: int) -> tuple[int, int]:
    """(spool memory, event queue raw-text limit) for a backlog budget: parsed events take several times
    their text in memory, so the event queue gets a small share."""
    return max(backlog_bytes // 2, 2 * _MIN_CHUNK), max(backlog_bytes // 32, 64 * 1024)


__all__ = ["SPOOL_PREFIX", "EventQueue", "Spool", "queue_limits"]
