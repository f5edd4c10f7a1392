"""The reader against damaged files: only documented errors (RecordingError) or counted skips, never a crash or a hang."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rancherlab.protocol import CONNECTED, DISCONNECTED, Event, Watch, marker, norman, parse_frame, parse_sent, steve
from rancherlab.recording import VERSION, LineTooLongError, RecordingError, RecordingWarning, read_recording

from .test_recording import make_header, stamp, write

FUZZ = settings(
    max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)


def small_stream(dialect: str) -> list[Event]:
    """Eight short events of every kind, so that cutting at every byte offset stays fast."""
    if dialect == "norman":
        events = [
            marker(CONNECTED, "norman", attempts=1),
            parse_frame(norman.PING, "norman"),
            parse_frame(norman.change_frame({"type": "node", "id": "c-a:m-1", "state": "active"}), "norman"),
            Event(0, 0, 0.0, None, "norman", "snapshot", "resource.create", type="pod", id="d:p", data={"type": "pod"}),
            parse_frame('{"name":"resource.change","data":{', "norman"),
            parse_frame(norman.remove_frame({"type": "node", "id": "c-a:m-1"}), "norman"),
            marker(DISCONNECTED, "norman", code=1006),
            parse_frame(norman.PING, "norman"),
        ]
    else:
        w = Watch("pod")
        events = [
            marker(CONNECTED, "steve"),
            parse_sent(w.subscribe_message("5"), "steve"),
            parse_frame(
                steve.encode_event("resource.start", data=steve.SUBSCRIBE_DATA, echo={"resourceType": "pod"}), "steve"
            ),
            parse_frame(
                steve.encode_event("resource.change", data={"id": "d/p", "type": "pod"}, revision="6"), "steve"
            ),
            parse_frame(steve.ping("v2.9.2"), "steve"),
            parse_sent(w.stop_message(), "steve"),
            parse_frame(steve.error_event("too old", {"resourceType": "pod"}), "steve"),
            marker(DISCONNECTED, "steve"),
        ]
    return stamp(events)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("orig")
    return {
        "norman.jsonl": write(d / "n.jsonl", small_stream("norman"), make_header(max_frame_bytes=4096)).read_bytes(),
        "steve.jsonl.gz": write(d / "s.jsonl.gz", small_stream("steve"), make_header("steve", "steve")).read_bytes(),
    }


def read_all(path: Path, strict: bool, max_frame_bytes: int | None = None) -> int:
    """Read every event; the only acceptable failures are RecordingErrors. Returns the events read."""
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)
        try:
            rec = read_recording(path, strict=strict, max_frame_bytes=max_frame_bytes)
            for _ in rec:
                n += 1
            if not strict:
                assert rec.skipped >= 0
            rec.summary  # noqa: B018 - must not raise either
        except RecordingError:
            pass
    return n


def test_every_truncation_point(tmp_path: Path, originals: dict[str, bytes]) -> None:
    for name, data in originals.items():
        path = tmp_path / name
        complete = None
        for cut in range(len(data) + 1):
            path.write_bytes(data[:cut])
            got = read_all(path, strict=False)
            read_all(path, strict=True)
            if cut == len(data):
                complete = got
            assert got <= 8
        assert complete == 8


@FUZZ
@given(st.data())
def test_corrupted_bytes(tmp_path: Path, originals: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(originals)))
    raw = bytearray(
        gzip.decompress(originals[name]) if data.draw(st.booleans()) and name.endswith(".gz") else originals[name]
    )
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.sampled_from([0, 10, 34, 44, 92, 123, 125, 255, data.draw(st.integers(0, 255))]))
    path = tmp_path / name
    path.write_bytes(bytes(raw))
    read_all(path, strict=data.draw(st.booleans()))


@FUZZ
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_after_a_valid_header(
    tmp_path: Path, originals: dict[str, bytes], tail: bytes, strict: bool
) -> None:
    header = originals["norman.jsonl"].split(b"\n", 1)[0]
    path = tmp_path / "r.jsonl"
    path.write_bytes(header + b"\n" + tail)
    read_all(path, strict)
    path.write_bytes(tail)
    read_all(path, strict)


@FUZZ
@given(st.integers(2, 40), st.integers(1, 9), st.booleans())
def test_huge_lines_are_refused_in_bounded_memory(
    tmp_path: Path, originals: dict[str, bytes], kib: int, where: int, at_end: bool
) -> None:
    lines = originals["norman.jsonl"].rstrip(b"\n").split(b"\n")
    junk = b'{"seq":1,"t":0,"ts":null,"conn":0,"kind":"marker","name":"x","raw":"' + b"a" * (kib * 1024) + b'"}'
    if at_end:
        content = b"\n".join(lines) + b"\n" + junk  # a huge last line, cut short
    else:
        lines.insert(where, junk)
        content = b"\n".join(lines) + b"\n"
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    rec = read_recording(path, strict=False, max_frame_bytes=100)  # lines up to 1224 bytes
    with pytest.warns(RecordingWarning, match="longer than"):
        got = list(rec)
    assert len(got) == 8 and rec.skipped == 1
    with pytest.raises(LineTooLongError):
        list(read_recording(path, max_frame_bytes=100))


@FUZZ
@given(
    st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats(), st.booleans()),
    st.one_of(st.text(max_size=30), st.none(), st.integers()),
)
def test_wrong_or_newer_versions(tmp_path: Path, originals: dict[str, bytes], version: object, fmt: object) -> None:
    lines = originals["norman.jsonl"].split(b"\n")
    header = json.loads(lines[0])
    header["version"] = version
    if fmt is not None:
        header["format"] = fmt
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n".join([json.dumps(header).encode(), *lines[1:]]))
    ok = version == VERSION and type(version) is int and fmt in (None, "rancherlab-recording")
    if ok:
        assert read_all(path, strict=True) == 8
    else:
        with pytest.raises(RecordingError):
            read_recording(path)


@FUZZ
@given(st.integers(10, 100), st.binary(max_size=20))
def test_gzip_cut_short_or_with_garbage(
    tmp_path: Path, originals: dict[str, bytes], percent: int, garbage: bytes
) -> None:
    data = originals["steve.jsonl.gz"]
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(data[: len(data) * percent // 100] + garbage)
    read_all(path, strict=True)
    read_all(path, strict=False)
