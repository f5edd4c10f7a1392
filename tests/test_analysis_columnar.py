"""`rl.load`'s columnar path: for a recording whose header says `frame_fields`, blocks of lines are read by pyarrow
and plain resource frames become rows without Python per row. It must give exactly what the per-line path and the
reader give, and leave every line it cannot vouch for (markers, snapshots, pings, damage of any kind) to the
per-line path, so errors, line numbers and skipped counts are those of the per-line path.

Each test reads real recordings written by `RecordingWriter` (damaged afterwards where it says so) twice: as `load`
reads them, and with the columnar path switched off (`_arrow_lines` reading no block), and compares; a spy on
`_arrow_lines` and `_routes` shows the columnar path was taken.
"""

from __future__ import annotations

import copy
import gzip
import re
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rancherlab import recording
from rancherlab.analysis import _load, frame, load
from rancherlab.analysis._frame import concat_frames
from rancherlab.analysis._load import iter_frames
from rancherlab.protocol import (
    CONNECTED,
    DISCONNECTED,
    RESOURCE_EVENTS,
    RESYNC_FINISHED,
    RESYNC_STARTED,
    Event,
    marker,
    norman,
    parse_frame,
    parse_sent,
    steve,
)
from rancherlab.recording import (
    LineBlock,
    RecordingCorruptError,
    RecordingHeader,
    RecordingTruncatedError,
    RecordingWarning,
    RecordingWriter,
    read_recording,
)

from .conftest import sample_objects

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- recordings -------------------------------------------------------------------------------------------


def mixed_events(dialect: str, rounds: int = 3) -> list[Event]:
    """Plain resource frames among everything else a recording holds: markers (an anomaly with its raw text),
    sent messages, snapshots and a resync, pings (Steve's carry `info`), a resource frame with `info` (Steve's
    disguised watch error), frames the parser calls anomalies, non-resource frames."""
    out: list[Event] = [marker(CONNECTED, dialect, url="wss://r/x")]  # type: ignore[arg-type]
    if dialect == "steve":
        pods = sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")
        secrets = sample_objects("steve-v1-secrets-collection-rancher-integration-testdata.json")
        out.append(parse_sent(steve.Watch("pod").subscribe_message(), "steve"))
        for r in range(rounds):
            out.append(parse_frame(steve.ping("v2.9.0"), "steve"))
            for i, obj in enumerate([*pods, *secrets] * 3):
                obj = copy.deepcopy(obj)
                obj["metadata"]["resourceVersion"] = str(1000 * r + i)
                name = ("resource.create", "resource.change", "resource.remove")[(r + i) % 3]
                echo = {"resourceType": obj["type"], **({"namespace": "default"} if i % 4 == 0 else {})}
                text = steve.encode_event(name, data=obj, revision=obj["metadata"]["resourceVersion"], echo=echo)
                out.append(parse_frame(text, "steve"))
            disguised = '{"name":"resource.change","resourceType":"pod","data":{"type":"pod","links":{},"message":"x"}}'
            out.append(parse_frame(disguised, "steve"))
            out.append(
                parse_frame(steve.error_event("too old resource version", echo={"resourceType": "pod"}), "steve")
            )
            out.append(parse_frame("{not json", "steve"))  # an anomaly marker keeping its raw text
        snapshot = parse_frame(steve.encode_event("resource.create", data=pods[0], echo={}), "steve")
    else:
        users = sample_objects("norman-v3-users-collection-qa-server-dashboard-blueprint.json")
        nodes = sample_objects("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json")
        clusters = sample_objects("norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json")
        for r in range(rounds):
            for i, obj in enumerate([*users, *nodes, *clusters] * 3):
                if i % 5 == 0:
                    out.append(parse_frame(norman.PING, "norman"))
                obj = copy.deepcopy(obj)
                text = norman.remove_frame(obj) if (r + i) % 7 == 0 else norman.change_frame(obj)
                out.append(parse_frame(text, "norman"))
            out.append(parse_frame('{"name":"resource.change","data":null}', "norman"))  # an anomaly
            out.append(parse_frame('{"name":"logout","data":{}}', "norman"))
        snapshot = parse_frame(norman.change_frame(users[0]), "norman")
    at = len(out) // 2
    out[at:at] = [
        marker(RESYNC_STARTED, dialect),  # type: ignore[arg-type]
        snapshot.replace(kind="snapshot"),
        snapshot.replace(kind="resync", info={"resync": "appeared"}),
        marker(RESYNC_FINISHED, dialect),  # type: ignore[arg-type]
    ]
    out.append(marker(DISCONNECTED, dialect, code=1006))  # type: ignore[arg-type]
    stamped = [e.stamped(seq=n, conn=1, t=n * 0.5, ts=T0 + timedelta(seconds=n / 4)) for n, e in enumerate(out, 1)]
    stamped[3] = stamped[3].replace(ts=None)  # an event without a wall-clock time
    return stamped


def plain(events: list[Event]) -> int:
    """How many of the events are plain resource frames, the rows the columnar path makes."""
    return sum(e.kind == "frame" and e.name in RESOURCE_EVENTS and not e.info for e in events)


def write(path: Path, events: list[Event], dialect: str, **kw: Any) -> Path:
    endpoint = "/v3/subscribe" if dialect == "norman" else "/v1/subscribe"
    scope = "global" if dialect == "norman" else "steve"
    header = RecordingHeader(dialect, scope, "https://rancher.example", endpoint, {}, synthetic=True)  # type: ignore[arg-type]
    with RecordingWriter(path, header, **kw) as w:
        w.write_many(events)
    return path


def edit(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> Path:
    """Rewrite a (plain) recording's lines with `change` (the header is lines[0])."""
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))
    return path


# --- the two paths ----------------------------------------------------------------------------------------


class Spy:
    """What the columnar path did: rows pyarrow read per block (None: the block went through the per-line path)
    and rows taken straight from its tables."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tables: list[int | None] = []
        self.plain = 0
        arrow_lines, routes = _load._arrow_lines, _load._routes

        def spy_arrow_lines(block: LineBlock) -> Any:
            table = arrow_lines(block)
            self.tables.append(None if table is None else table.num_rows)
            return table

        def spy_routes(table: Any, pings: bool) -> Any:
            route = routes(table, pings)
            self.plain += int((route == _load._PLAIN).sum())
            return route

        monkeypatch.setattr(_load, "_arrow_lines", spy_arrow_lines)
        monkeypatch.setattr(_load, "_routes", spy_routes)

    def reset(self) -> None:
        self.tables.clear()
        self.plain = 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


@pytest.fixture(params=["one block", "small blocks"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Whole small files in one block, or blocks of a few lines: batches and runs then cross block boundaries, and
    blocks are parsed while the next is read."""
    if request.param == "small blocks":
        monkeypatch.setattr(_load, "_block_bytes", lambda batch_rows: 3000)
        monkeypatch.setattr(recording, "_BLOCK_CHUNK", 1000)
    return str(request.param)


def outcome(read: Callable[[], Any]) -> tuple[Any, ...]:
    """What a read gives: its result and warnings, or the error it raises (type, message, line)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = read()
        except Exception as exc:  # noqa: BLE001 - compared below, whatever it is
            return ("raised", type(exc), str(exc), getattr(exc, "line", None))
    return ("read", result, [(w.category, str(w.message)) for w in caught])


def per_line(monkeypatch: pytest.MonkeyPatch, read: Callable[[], Any]) -> tuple[Any, ...]:
    with monkeypatch.context() as m:
        m.setattr(_load, "_arrow_lines", lambda block: None)
        return outcome(read)


def assert_same(got: tuple[Any, ...], expected: tuple[Any, ...]) -> None:
    assert got[0] == expected[0], (got, expected)
    if got[0] == "raised":
        assert got[1:] == expected[1:]
        return
    results = [(got[1], expected[1])] if isinstance(got[1], pd.DataFrame) else list(zip(got[1], expected[1]))
    assert len(got[1]) == len(expected[1])
    for a, b in results:
        pd.testing.assert_frame_equal(a, b)
    assert got[2] == expected[2]


def both(monkeypatch: pytest.MonkeyPatch, read: Callable[[], Any]) -> tuple[Any, ...]:
    """The read with the columnar path and without it: the same frame and warnings, or the same error."""
    got = outcome(read)
    assert_same(got, per_line(monkeypatch, read))
    return got


# --- mixed recordings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["steve", "norman"])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_mixed_recording_equals_the_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: Spy, blocks: str, dialect: str, suffix: str
) -> None:
    events = mixed_events(dialect)
    path = write(tmp_path / f"mixed{suffix}", events, dialect)
    for pings in (False, True):
        spy.reset()
        df = both(monkeypatch, lambda pings=pings: load(path, pings=pings))[1]  # type: ignore[misc]
        pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]), frame(read_recording(path), pings=pings))
        # Every plain resource frame came from pyarrow's tables; everything else went line by line.
        assert spy.tables and None not in spy.tables
        assert spy.plain == plain(events)
    kinds = {"frame", "sent", "snapshot", "resync", "marker"} - ({"sent"} if dialect == "norman" else set())
    assert set(df["kind"]) == kinds and df["info"].notna().any() and (df["name"] == "ping").any()


def test_files_without_frame_fields_keep_the_per_line_path(tmp_path: Path, spy: Spy) -> None:
    path = write(tmp_path / "old.jsonl", mixed_events("steve", rounds=1), "steve")
    edit(path, lambda lines: [lines[0].replace(b',"frame_fields":true', b""), *lines[1:]])
    assert not read_recording(path).header.frame_fields
    pd.testing.assert_frame_equal(load(path).drop(columns=["recording", "scope"]), frame(read_recording(path)))
    assert spy.tables == [] and spy.plain == 0


def test_folder_of_recordings_with_and_without_frame_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "recs"
    folder.mkdir()
    write(folder / "a.jsonl", mixed_events("steve", rounds=1), "steve")
    write(folder / "b.jsonl", mixed_events("norman", rounds=1), "norman")
    write(folder / "c.jsonl.gz", mixed_events("steve", rounds=1), "steve")
    both(monkeypatch, lambda: load(folder))
    edit(folder / "b.jsonl", lambda lines: [lines[0].replace(b',"frame_fields":true', b""), *lines[1:]])
    df = both(monkeypatch, lambda: load(folder))[1]
    assert df["recording"].cat.categories.tolist() == ["a.jsonl", "b.jsonl", "c.jsonl.gz"]
    assert set(df["dialect"]) == {"steve", "norman"}


@pytest.mark.parametrize("batch_rows", [1, 7, 100])
def test_small_batches_are_the_per_line_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: Spy, blocks: str, batch_rows: int
) -> None:
    folder = tmp_path / "recs"
    folder.mkdir()
    write(folder / "a.jsonl", mixed_events("steve", rounds=2), "steve")
    write(folder / "b.jsonl.gz", mixed_events("norman", rounds=2), "norman")
    got = both(monkeypatch, lambda: list(iter_frames(folder, batch_rows=batch_rows)))[1]
    assert all(0 < len(b) <= batch_rows and b["recording"].nunique() == 1 for b in got)
    assert spy.plain > 0
    pd.testing.assert_frame_equal(concat_frames(got), load(folder))


# --- damage: whatever pyarrow reads differently is left to the per-line path -------------------------------


def mid(lines: list[bytes]) -> int:
    """The index of a plain resource frame line in the middle of a recording."""
    at = len(lines) // 2
    while b'"name":"resource.change"' not in lines[at] or b'"info"' in lines[at]:
        at += 1
    return at


def put(
    change: Callable[[bytes], bytes], where: Callable[[list[bytes]], int] = mid
) -> Callable[[list[bytes]], list[bytes]]:
    def edit_lines(lines: list[bytes]) -> list[bytes]:
        at = where(lines)
        return [*lines[:at], change(lines[at]), *lines[at + 1 :]]

    return edit_lines


def field(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(line: bytes) -> bytes:
        assert old in line
        return line.replace(old, new, 1)

    return change


def first_field(line: bytes) -> bytes:
    return line.split(b",", 1)[0]


DAMAGE: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "garbage line": lambda lines: [*lines[: mid(lines)], b"\x00\xff garbage\n", *lines[mid(lines) :]],
    "type of another type": put(lambda line: re.sub(rb'"type":"[^"]*"', b'"type":5', line, count=1)),
    "seq of another type": put(lambda line: line.replace(first_field(line), b'{"seq":"7"', 1)),
    "seq a float": put(lambda line: line.replace(first_field(line), b'{"seq":7.0', 1)),
    "seq null": put(lambda line: line.replace(first_field(line), b'{"seq":null', 1)),
    "raw missing": put(lambda line: line[: line.index(b',"raw":')] + b"}\n"),
    "t NaN": put(field(b'"t":', b'"t":NaN,"t0":')),
    "NaN in an unknown field": put(field(b'"name":', b'"x":NaN,"name":')),
    "Infinity in an unknown field": put(field(b'"name":', b'"x":[1,-Infinity],"name":')),
    "t past a double": put(field(b'"t":', b'"t":1e999,"t0":')),
    "nested deeper than orjson reads": put(field(b'"name":', b'"x":' + b"[" * 2000 + b"]" * 2000 + b',"name":')),
    "invalid UTF-8 in an unknown field": put(field(b'"name":', b'"x":"\xc3\x28","name":')),
    "a lone surrogate": put(field(b'"name":', b'"x":"\\ud800","name":')),
    "duplicate key": put(field(b'"name":', b'"conn":2,"name":')),
    "info null": put(field(b'"name":', b'"info":null,"name":')),
    "info of another type": put(field(b'"name":', b'"info":"x","name":')),
    "transitioning outside the vocabulary": put(
        lambda line: (
            re.sub(rb'"transitioning":"[a-z]*"', b'"transitioning":"maybe"', line, count=1)
            if b'"transitioning"' in line
            else line.replace(b'"raw":', b'"transitioning":"maybe","raw":', 1)
        )
    ),
    "null line": lambda lines: [*lines[:5], b"null\n", *lines[5:]],
    "blank line and two objects on one line": lambda lines: [
        *lines[:4],
        b"\n",
        *lines[4:9],
        lines[9].rstrip(b"\n") + lines[10],
        *lines[11:],
    ],
    "whitespace line": lambda lines: [*lines[:4], b"  \t\r\n", *lines[4:]],
    "leading whitespace": put(lambda line: b"  " + line),
    "CRLF line ends": lambda lines: [line.replace(b"\n", b"\r\n") for line in lines],
    "cut last line": lambda lines: [*lines[:-1], lines[-2][:50]],
    "time not ISO 8601": put(lambda line: line.replace(b'"ts":"', b'"ts":"yesterday","ts0":"', 1)),
    "time in another zone": put(lambda line: line.replace(b'Z"', b'+02:00"', 1)),
    "unknown fields": lambda lines: [
        line.replace(b'"name":', b'"x":{"y":[1,2.5,"z",null]},"name":', 1) if i > 1 else line
        for i, line in enumerate(lines)
    ],
    "an unknown field of two types": put(field(b'"name":', b'"x":[1,"a"],"name":')),
    "two plain frames": put(lambda line: line + line),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("dialect", ["steve", "norman"])
def test_damage_reads_as_the_per_line_path_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: Spy, blocks: str, damage: str, dialect: str
) -> None:
    path = edit(write(tmp_path / "rec.jsonl", mixed_events(dialect, rounds=2), dialect), DAMAGE[damage])
    both(monkeypatch, lambda: load(path))
    both(monkeypatch, lambda: load(path, strict=False, pings=True))
    both(monkeypatch, lambda: list(iter_frames(path, strict=False, batch_rows=5)))
    assert spy.tables  # pyarrow was asked


def test_damaged_line_in_the_middle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    """Strict: the per-line path's error, with the file and line; tolerant: the line skipped and counted, the rest
    read columnar."""
    events = mixed_events("steve")
    path = write(tmp_path / "rec.jsonl", events, "steve")
    lines = path.read_bytes().splitlines(keepends=True)
    at = mid(lines)
    edit(path, lambda lines: [*lines[:at], b'{"seq": 1, "kind": "frame", garbage\n', *lines[at:]])
    with pytest.raises(RecordingCorruptError) as raised:
        load(path)
    assert raised.value.line == at + 1 and raised.value.path == str(path) and "not a JSON line" in str(raised.value)
    assert spy.tables == [None]  # the block went line by line
    monkeypatch.setattr(_load, "_block_bytes", lambda batch_rows: 5000)
    monkeypatch.setattr(recording, "_BLOCK_CHUNK", 1000)
    spy.reset()
    with pytest.warns(RecordingWarning, match=f"skipped 1 unreadable line.*rec.jsonl line {at + 1}: not a JSON line"):
        df = load(path, strict=False)
    assert None in spy.tables and any(spy.tables)  # only the damaged block went line by line
    assert 0 < spy.plain < plain(events)
    expected = frame(events)
    pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]), expected)


def test_field_of_another_type(tmp_path: Path, spy: Spy) -> None:
    path = write(tmp_path / "rec.jsonl.gz", mixed_events("norman"), "norman")
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    at = mid(lines)
    lines[at] = re.sub(rb'"type":"[^"]*"', b'"type":5', lines[at], count=1)
    assert b'"type":5' in lines[at]
    path.write_bytes(gzip.compress(b"".join(lines)))
    with pytest.raises(RecordingCorruptError, match=f"line {at + 1}: not a valid event line .*must be strings"):
        load(path)
    assert spy.tables == [None]
    with pytest.warns(RecordingWarning, match="skipped 1 unreadable line"):
        df = load(path, strict=False)
    assert len(df) == len(frame(mixed_events("norman"))) - 1


def test_cut_gzip_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocks: str) -> None:
    path = write(tmp_path / "rec.jsonl.gz", mixed_events("steve"), "steve")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    got = both(monkeypatch, lambda: load(path))
    assert got[1] is RecordingTruncatedError
    both(monkeypatch, lambda: load(path, strict=False))
