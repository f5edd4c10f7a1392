"""`RecordingFile.blocks`: the lines `lines()` gives, with runs of whole lines handed over in blocks (for readers
that parse many lines in one call), whatever the lines, chunk sizes, limits and damage."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rancherlab import recording
from rancherlab.recording import LineBlock, RecordingFormatError, RecordingHeader, open_recording_file


def expand(items: Iterator[Any], keep: int) -> list[tuple[int, bytes | None, str | None]]:
    """`blocks()` items as the lines `lines()` gives, checking on the way that the `keep` blocks before the last
    are untouched (a block's memory is reused only once `keep` more blocks are out and the next is asked for)."""
    out: list[tuple[int, bytes | None, str | None]] = []
    held: list[tuple[memoryview, bytes]] = []
    for item in items:
        if not isinstance(item, LineBlock):
            out.append(item)
            continue
        data = bytes(item.data)
        assert all(bytes(view) == copy for view, copy in held), "a block held was overwritten"
        held = [*held, (item.data, data)][-keep:]
        assert data.endswith(b"\n") and len(data) == item.ends[-1] + 1
        assert not item.ascii or data.isascii()
        start = 0
        for i, end in enumerate(item.ends.tolist()):
            out.append((item.first + i, data[start:end], None))
            start = end + 1
    return out


@pytest.mark.parametrize("seed", range(8))
def test_line_blocks_are_the_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Lines of any length (over the limit: streamed past), bytes past ASCII, a last line without its newline, a
    cut gzip stream, chunks smaller and larger than the lines."""
    rng = random.Random(seed)
    header = RecordingHeader("steve", "steve", "https://r", "/v1/subscribe", {}, max_frame_bytes=400, synthetic=True)
    first = recording._dumps(header.to_json())  # lines longer than 2 * 400 + 1024 = 1824 bytes are too long
    for case in range(40):
        monkeypatch.setattr(recording, "_BLOCK_CHUNK", rng.choice([16, 100, 1000, 1 << 20]))
        lines = []
        for _ in range(rng.randrange(0, 40)):
            size = rng.choice([0, 1, 3, 50, 400, 1824, 1825, 3000, 9000])
            lines.append(bytes(rng.choice(b'{}a" \xc3\xa9') if rng.random() < 0.01 else 0x61 for _ in range(size)))
        text = first + b"\n" + b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
        gz = rng.random() < 0.4
        data = gzip.compress(text) if gz else text
        if rng.random() < 0.3:  # cut (a gzip stream anywhere past its first third)
            data = data[: rng.randrange(len(data) // 3 if gz else len(first) + 1, len(data) + 1)]
        path = tmp_path / f"{case}.jsonl{'.gz' if gz else ''}"
        path.write_bytes(data)
        try:
            with open_recording_file(path) as rf:
                expected = list(rf.lines())
        except RecordingFormatError:  # cut inside the header
            continue
        for size, keep in ((1, 1), (500, 1), (500, 3), (1 << 24, 2)):
            with open_recording_file(path) as rf:
                assert expand(rf.blocks(size, keep=keep), keep) == expected
