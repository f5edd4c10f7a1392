"""The receive path's bounded queues: order kept across memory and disk, memory capped, nothing readable on disk."""

from __future__ import annotations

import asyncio
import os
import random
import stat
from collections import deque
from pathlib import Path

import pytest

from rancherlab._spool import SPOOL_PREFIX, EventQueue, Spool

TOKEN = "token-spool1:Sp00lS3cretValueQ7"


class _End:
    """A non-frame item, like the reader's end-of-connection marker."""


def _frames(n: int, size: int = 1000) -> list[str | bytes]:
    out: list[str | bytes] = []
    for i in range(n):
        text = f'{{"name":"resource.change","data":{{"seq":{i},"password":"{TOKEN}","pad":"{"é" * (size // 2)}"}}}}'
        out.append(text.encode() if i % 7 == 0 else text)  # the reader may hand on bytes too
    return out


def test_order_is_kept_across_memory_and_disk(tmp_path: Path) -> None:
    async def main() -> None:
        spool: Spool[object] = Spool(64 * 1024, directory=tmp_path)
        frames = _frames(2000)
        end = _End()
        model: deque[object] = deque()
        rng = random.Random(5)
        got: list[object] = []
        it = iter([*frames, end])
        pending = True
        while pending or model:
            # bursts of puts, then bursts of gets: the disk part fills, drains and fills again
            for _ in range(rng.randrange(0, 400)):
                item = next(it, None)
                if item is None:
                    pending = False
                    break
                spool.put_nowait(item)
                model.append(item)
                assert spool.memory_bytes <= 64 * 1024
            for _ in range(rng.randrange(0, 300)):
                if not model:
                    break
                assert spool.qsize() == len(model)
                got.append(await spool.get())
                assert got[-1] == model.popleft()
        assert got == [*frames, end] and got[-1] is end
        assert spool.spilled > 500 and spool.empty() and spool.disk_bytes == 0
        assert spool.path is not None and spool.path.exists()
        spool.close()
        assert not spool.path.exists()

    asyncio.run(main())


def test_the_spool_file_holds_nothing_readable(tmp_path: Path) -> None:
    spool: Spool[object] = Spool(32 * 1024, directory=tmp_path)
    for frame in _frames(500):
        spool.put_nowait(frame)
    assert spool.spilled > 400
    files = list(tmp_path.iterdir())
    assert [p.name.startswith(SPOOL_PREFIX) for p in files] == [True]
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    data = files[0].read_bytes()
    assert len(data) > 300 * 1000  # the frames are there, but only as ciphertext
    for needle in (TOKEN, TOKEN.split(":")[1], "resource.change", "password"):
        assert needle.encode() not in data and needle.encode("utf-16-le") not in data
    assert TOKEN not in repr(spool)
    got = [spool.get_nowait() for _ in range(500)]
    assert got == _frames(500)
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_spool_file_is_an_error_not_wrong_data(tmp_path: Path) -> None:
    from cryptography.exceptions import InvalidTag

    spool: Spool[object] = Spool(32 * 1024, directory=tmp_path)
    for frame in _frames(200):
        spool.put_nowait(frame)
    spool._write_out()
    assert spool.path is not None
    with open(spool.path, "r+b") as f:  # flip one byte of the first spilled frame
        f.seek(40)
        byte = f.read(1)
        f.seek(40)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(InvalidTag):
        while True:
            spool.get_nowait()
    spool.close()


def test_age_and_waiting_for_it() -> None:
    async def main() -> None:
        spool: Spool[object] = Spool(1024 * 1024)
        assert spool.age() == 0.0
        spool.put_nowait("a")
        await asyncio.sleep(0.05)
        assert spool.age() >= 0.05
        waiter = asyncio.ensure_future(spool.wait_age(0.01))
        await asyncio.sleep(0.02)
        assert not waiter.done()  # the head is too old: the reader waits
        assert await spool.get() == "a"
        await asyncio.wait_for(waiter, 1)
        spool.close()

    asyncio.run(main())


def test_the_gate_runs_before_each_get_and_event_queue_room() -> None:
    class Ev:
        def __init__(self, raw: str) -> None:
            self.raw = raw

    async def main() -> None:
        events: EventQueue[Ev] = EventQueue(1000)
        spool: Spool[object] = Spool(1024 * 1024, gate=events.wait_room)
        spool.put_nowait("frame")
        for _ in range(3):
            events.put_nowait(Ev("x" * 600))  # never blocks, even past the limit
        assert not events.has_room() and events.qsize() == 3
        getter = asyncio.ensure_future(spool.get())
        await asyncio.sleep(0.02)
        assert not getter.done()  # processing waits for room downstream; the spool still takes frames
        spool.put_nowait("more")
        events.get_nowait()
        await asyncio.sleep(0.02)
        assert not getter.done()
        events.get_nowait()
        assert await asyncio.wait_for(getter, 1) == "frame"
        spool.close()

    asyncio.run(main())


def test_files_left_by_a_killed_process_are_swept(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    stale = tmp_path / f"{SPOOL_PREFIX}{int(dead.stdout)}-abc.bin"
    stale.write_bytes(b"ciphertext of a killed capture")
    alive = tmp_path / f"{SPOOL_PREFIX}1-abc.bin"  # pid 1 is always running
    alive.write_bytes(b"another process's spool")
    spool: Spool[object] = Spool(32 * 1024, directory=tmp_path)
    for frame in _frames(100):
        spool.put_nowait(frame)
    assert not stale.exists() and alive.exists()
    assert spool.path is not None and spool.path.name.startswith(f"{SPOOL_PREFIX}{os.getpid()}-")
    spool.close()
