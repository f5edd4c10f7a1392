"""Recordings: write → read gives the same Events, byte-faithful raw text, the documented format, safe errors."""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rancherlab.protocol import (
    CONNECTED,
    DISCONNECTED,
    RESYNC_FINISHED,
    RESYNC_STARTED,
    WATCH_STOPPED,
    Event,
    Watch,
    marker,
    norman,
    parse_frame,
    parse_sent,
    steve,
)
from rancherlab.protocol.errors import ProtocolError
from rancherlab.protocol.event import RESOURCE_EVENTS
from rancherlab.protocol.objects import object_summary
from rancherlab.recording import (
    FORMAT,
    VERSION,
    LineTooLongError,
    MixedRecordingsError,
    Recording,
    RecordingCorruptError,
    RecordingError,
    RecordingExistsError,
    RecordingFormatError,
    RecordingHeader,
    RecordingTruncatedError,
    RecordingVersionError,
    RecordingWarning,
    RecordingWriter,
    decode_event,
    read_events,
    read_recording,
    recording_files,
)
from rancherlab.redaction import Redactor

from .conftest import SAMPLES, sample

DOCS = Path(__file__).resolve().parents[1] / "docs"
TS0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- realistic streams (shared with the other recording tests) ---------------------------------------


def stamp(events: list[Event]) -> list[Event]:
    """Give parsed events stream positions, as the live client does; a disconnect starts a new connection."""
    out, conn = [], 0
    for i, event in enumerate(events):
        t = round(0.25 * i + 0.001 * (i % 7), 6)
        ts = None if event.is_ping and i % 2 else TS0 + timedelta(seconds=t)
        out.append(event.stamped(seq=i + 1, conn=conn, t=t, ts=ts))
        if event.kind == "marker" and event.name == DISCONNECTED:
            conn += 1
    return out


def snapshot(kind: str, obj: dict[str, Any], dialect: str = "norman") -> Event:
    rev = obj.get("metadata", {}).get("resourceVersion") if dialect == "steve" else None
    return Event(
        0,
        0,
        0.0,
        None,
        dialect,
        kind,
        "resource.create",
        type=obj["type"],
        id=obj.get("id"),  # type: ignore[arg-type]
        revision=rev,
        data=obj,
        info={"resync": "appeared"} if kind == "resync" else {},
    )


def norman_events() -> list[Event]:
    nodes = sample("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json")["data"]
    clusters = sample("norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json")["data"]
    projects = sample("norman-v3-projects-collection-trimmed-api-browser-yue-open-devops.json")["data"]
    escaped = {**projects[0], "description": "a <b> & c \u2028 naïve ✓", "labels": {"x": "1"}}
    events = [
        marker(CONNECTED, "norman", endpoint="/v3/subscribe", attempts=1),
        *(snapshot("snapshot", n) for n in nodes),
        parse_frame(norman.change_frame(clusters[0]), "norman"),
        parse_frame(norman.PING, "norman"),
        parse_frame(norman.change_frame(escaped), "norman"),
        parse_frame(norman.remove_frame(nodes[0]), "norman"),
        marker(DISCONNECTED, "norman", code=1006, reason="", seconds=12.5),
        marker(CONNECTED, "norman", endpoint="/v3/subscribe", attempts=2),
        marker(RESYNC_STARTED, "norman", types=["node"]),
        snapshot("resync", nodes[-1]),
        marker(RESYNC_FINISHED, "norman", types=["node"], appeared=1, changed=0, vanished=0),
        parse_frame('{"name":"resource.change","data":{"type":"node"', "norman"),  # cut short: an anomaly marker
        parse_frame(norman.change_frame(projects[0]), "norman"),
    ]
    return stamp(events)


def steve_events() -> list[Event]:
    pods = sample("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")["data"]
    index = [json.loads(line) for line in (SAMPLES / "frames-index.jsonl").read_text().splitlines() if line.strip()]
    real = [
        parse_frame(f["raw"], "steve") if f["direction"] == "server->client" else parse_sent(f["raw"], "steve")
        for f in index
        if f["api"] == "v1-steve"
    ]
    pod_watch = Watch("pod", namespace="default")
    echo = {"resourceType": "pod", "namespace": "default"}
    events = [
        marker(CONNECTED, "steve", endpoint="/v1/subscribe", attempts=1),
        parse_sent(pod_watch.subscribe_message(), "steve"),
        parse_frame(steve.encode_event("resource.start", data=steve.SUBSCRIBE_DATA, echo=echo), "steve"),
        *(snapshot("snapshot", p, "steve") for p in pods[:2]),
        *(
            parse_frame(
                steve.encode_event("resource.change", data=p, revision=p["metadata"]["resourceVersion"], echo=echo),
                "steve",
            )
            for p in pods
        ),
        parse_frame(steve.ping("v2.9.2"), "steve"),
        parse_frame(steve.error_event("the server does not allow this method", {"resourceType": "secret"}), "steve"),
        parse_sent(pod_watch.stop_message(), "steve"),
        parse_frame(steve.encode_event("resource.stop", data=steve.SUBSCRIBE_DATA, echo=echo), "steve"),
        marker(WATCH_STOPPED, "steve", watch=pod_watch.fields(), error=None),
        *real,
    ]
    return stamp(events)


def make_header(
    dialect: str = "norman", scope: str = "global", *, redaction: Any = None, **fields: Any
) -> RecordingHeader:
    endpoint = "/v3/subscribe" if dialect == "norman" else "/v1/subscribe"
    return RecordingHeader(
        dialect,
        scope,
        "https://rancher.example.com",
        endpoint,  # type: ignore[arg-type]
        redaction if redaction is not None else Redactor(enabled=False),
        started=TS0,
        **fields,
    )


def write(path: Path, events: list[Event], header: RecordingHeader | None = None, **kw: Any) -> Path:
    dialect = events[0].dialect if events else "norman"
    with RecordingWriter(path, header or make_header(dialect, "global" if dialect == "norman" else "steve"), **kw) as w:
        w.write_many(events)
    return path


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.splitlines()


# --- round trip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
@pytest.mark.parametrize("make", [norman_events, steve_events], ids=["norman", "steve"])
def test_written_events_read_back_equal(tmp_path: Path, name: str, make: Any) -> None:
    events = make()
    assert {e.kind for e in events} >= {"frame", "marker", "snapshot"}
    rec = read_recording(write(tmp_path / name, events))
    assert list(rec) == events
    assert list(rec) == events  # a Recording can be read again
    assert rec.skipped == 0
    assert rec.summary is not None and rec.summary["events"] == len(events)
    assert rec.header.dialect == events[0].dialect


def test_raw_text_is_recorded_byte_for_byte(tmp_path: Path) -> None:
    events = steve_events() + []
    off = Redactor(enabled=False)
    assert all(off.redact(e) is e for e in events)
    path = write(tmp_path / "r.jsonl", events)
    recorded = [json.loads(line) for line in lines_of(path)[1:-1]]
    for event, line in zip(events, recorded):
        if event.kind in ("frame", "sent"):
            assert line["raw"] == event.raw
            stamp = {k: line.pop(k) for k in ("seq", "t", "ts", "conn", "kind", "name", "raw")}
            if event.kind == "sent":
                assert not line  # a sent message is its raw text only
                continue
            # A frame line also carries what the frame rule reads from raw, and its object's summary: nothing else.
            parsed = parse_frame(stamp["raw"], "steve")
            fields = {"type": parsed.type, "id": parsed.id, "revision": parsed.revision, "watch": parsed.watch}
            fields |= {"info": dict(parsed.info) or None}
            if parsed.name in RESOURCE_EVENTS:
                fields |= object_summary("steve", parsed.data)._asdict()
            assert line == {k: v for k, v in fields.items() if v is not None}
    norman_path = write(tmp_path / "n.jsonl", norman_events())
    escaped = [
        json.loads(line)["raw"] for line in lines_of(norman_path)[1:] if b"naive" in line or b"na\xc3\xafve" in line
    ]
    assert escaped and "\\u003cb\\u003e \\u0026 c \\u2028" in escaped[0] and escaped[0].endswith("\n}")


def test_bytes_are_deterministic(tmp_path: Path) -> None:
    events = norman_events()
    a = write(tmp_path / "a.jsonl", events).read_bytes()
    b = write(tmp_path / "b.jsonl", events).read_bytes()
    assert a == b
    c = write(tmp_path / "c.jsonl.gz", events)
    assert gzip.decompress(c.read_bytes()) == a


def test_header_fields(tmp_path: Path) -> None:
    r = Redactor(credentials=["token-abcde:0123456789abcdef"])
    header = RecordingHeader.from_url(
        "wss://admin:token-abcde:0123456789abcdef@Rancher.Example.com/v3/projects/c-abc12:p-xyz34/subscribe?sockId=4&resourceTypes=pod",
        redaction=r,
        server_version="v2.9.2",
        synthetic=True,
        note="made by a test",
        started=TS0,
    )
    path = write(tmp_path / "h.jsonl", [], header)
    doc = json.loads(lines_of(path)[0])
    assert doc == {
        "format": FORMAT,
        "version": VERSION,
        "rancherlab": doc["rancherlab"],
        "dialect": "norman",
        "scope": "project:c-abc12:p-xyz34",
        "server": "https://rancher.example.com:443",
        "endpoint": "/v3/projects/c-abc12:p-xyz34/subscribe?resourceTypes=pod",
        "server_version": "v2.9.2",
        "started": "2026-03-01T12:00:00Z",
        "redaction": r.policy,
        "max_frame_bytes": header.max_frame_bytes,
        "synthetic": True,
        "note": "made by a test",
        "frame_fields": True,
    }
    from rancherlab._version import __version__

    assert doc["rancherlab"] == __version__
    assert b"0123456789abcdef" not in path.read_bytes() and b"admin" not in path.read_bytes()
    assert read_recording(path).header == dataclasses.replace(header, frame_fields=True)


def test_lines_follow_the_json_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((DOCS / "recording.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    header_only = jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/header"})
    for make in (norman_events, steve_events):
        events = make()
        path = write(
            tmp_path / f"{make.__name__}.jsonl",
            events,
            make_header(
                events[0].dialect,
                "steve" if events[0].dialect == "steve" else "global",
                redaction=Redactor(),
                synthetic=True,
                note="n",
            ),
        )
        lines = [json.loads(line) for line in lines_of(path)]
        header_only.validate(lines[0])
        for line in lines:
            validator.validate(line)
    for bad in (
        {"seq": 1},
        {"seq": 1, "t": 0, "ts": None, "conn": 0, "kind": "frame", "name": "ping"},
        {"format": FORMAT, "version": 1},
        {"summary": 3},
    ):
        assert not validator.is_valid(bad), bad


# --- writer -----------------------------------------------------------------------------------------


def test_never_overwrites_unless_asked(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", norman_events())
    before = path.read_bytes()
    with pytest.raises(RecordingExistsError, match="overwrite=True"):
        RecordingWriter(path, make_header())
    assert isinstance(RecordingExistsError("x"), FileExistsError)
    assert path.read_bytes() == before
    write(path, norman_events()[:2], overwrite=True)
    assert len(list(read_recording(path))) == 2


def test_write_many_is_on_disk_at_once_and_write_within_a_second(tmp_path: Path) -> None:
    events = steve_events()
    writer = RecordingWriter(tmp_path / "r.jsonl.gz", make_header("steve", "steve"))
    try:
        writer.write_many(events[:5])
        with pytest.warns(RecordingWarning):  # the gzip stream has no end yet: counted as cut short
            assert list(read_recording(writer.path, strict=False)) == events[:5]
        writer.write(events[5])
        time.sleep(1.2)
        with pytest.warns(RecordingWarning):
            assert list(read_recording(writer.path, strict=False)) == events[:6]
    finally:
        writer.close()
    rec = read_recording(writer.path)
    assert list(rec) == events[:6] and rec.summary is not None


def test_rotation_writes_parts_each_with_a_header(tmp_path: Path) -> None:
    events = norman_events()
    path = write(tmp_path / "rec.jsonl", events, rotate_bytes=6000)
    files = recording_files(tmp_path)
    assert files[0] == path and len(files) > 2
    assert [f.name for f in files[1:3]] == ["rec.1.jsonl", "rec.2.jsonl"]
    parts = [read_recording(f) for f in files]
    assert [p.header.part for p in parts] == list(range(len(files)))
    assert [e for p in parts for e in p] == events
    assert list(read_recording(tmp_path)) == events
    assert parts[0].summary is not None and parts[0].summary["continued_in"] == "rec.1.jsonl"
    assert parts[-1].summary is not None and parts[-1].summary["total_events"] == len(events)
    with pytest.raises(RecordingExistsError):
        RecordingWriter(tmp_path / "rec.jsonl", make_header(), rotate_bytes=6000)
    write(tmp_path / "rec.jsonl", events[:1], overwrite=True)  # replaces the old parts too
    assert recording_files(tmp_path) == [path]


def test_writer_refuses_events_it_cannot_record(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "r.jsonl", make_header()) as w:
        with pytest.raises(ValueError, match="steve"):
            w.write(steve_events()[1])
        with pytest.raises(ValueError, match="raw"):
            w.write(Event(1, 0, 0.0, None, "norman", "frame", "ping"))
        with pytest.raises(ValueError, match="finite"):
            w.write(marker(CONNECTED, "norman", t=float("nan")))
    with pytest.raises(ValueError, match="closed"):
        w.write(norman_events()[0])
    assert "r.jsonl" in repr(w)


def test_aborted_writer_says_so(tmp_path: Path) -> None:
    with pytest.raises(KeyError), RecordingWriter(tmp_path / "r.jsonl", make_header()) as w:
        w.write(norman_events()[0])
        raise KeyError("boom")
    summary = read_recording(tmp_path / "r.jsonl").summary
    assert summary is not None and summary["aborted"] == "KeyError" and summary["events"] == 1


# --- reader -----------------------------------------------------------------------------------------


def test_not_a_recording(tmp_path: Path) -> None:
    cases = {
        "empty.jsonl": b"",
        "text.jsonl": b"hello\n",
        "json.jsonl": b'{"format":"other","version":1}\n',
        "array.jsonl": b"[1,2]\n",
        "noversion.jsonl": json.dumps({"format": FORMAT}).encode() + b"\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(RecordingFormatError) as info:
            read_recording(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(FileNotFoundError):
        read_recording(tmp_path / "missing.jsonl")
    (tmp_path / "sub").mkdir()
    with pytest.raises(RecordingError, match="no recordings"):
        read_recording(tmp_path / "sub")


def test_newer_version_says_how_to_upgrade(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", norman_events())
    lines = lines_of(path)
    header = json.loads(lines[0])
    header.update(version=VERSION + 1, rancherlab="9.3.0")
    (tmp_path / "new.jsonl").write_bytes(b"\n".join([json.dumps(header).encode(), *lines[1:]]) + b"\n")
    with pytest.raises(RecordingVersionError) as info:
        read_recording(tmp_path / "new.jsonl")
    message = str(info.value)
    assert f"version {VERSION + 1}" in message and "rancherlab>=9.3.0" in message and "pip install" in message


def test_unknown_header_fields_and_event_fields_are_tolerated(tmp_path: Path) -> None:
    events = norman_events()
    lines = lines_of(write(tmp_path / "r.jsonl", events))
    header = {**json.loads(lines[0]), "future_field": {"a": 1}}
    body = [
        json.dumps({**json.loads(line), "later": True}).encode() if b'"seq"' in line else line for line in lines[1:]
    ]
    (tmp_path / "x.jsonl").write_bytes(b"\n".join([json.dumps(header).encode(), *body]) + b"\n")
    rec = read_recording(tmp_path / "x.jsonl")
    assert rec.header.extra == {"future_field": {"a": 1}}
    assert list(rec) == events


def corrupt(tmp_path: Path, events: list[Event], lineno: int, replacement: bytes) -> Path:
    lines = lines_of(write(tmp_path / "good.jsonl", events, overwrite=True))
    lines[lineno - 1] = replacement
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    "replacement",
    [
        b"{not json",
        b"\xff\xfe garbage",
        b"[]",
        b'{"seq":"x","t":0,"conn":0,"kind":"marker","name":"a"}',
        b'{"seq":5,"t":0,"ts":null,"conn":0,"kind":"frame","name":"resource.change","type":5,"raw":"{}"}',
        b'{"seq":5,"t":1e999,"ts":null,"conn":0,"kind":"marker","name":"a"}',
        b'{"seq":5,"t":0,"ts":"yesterday","conn":0,"kind":"marker","name":"a"}',
        b'{"seq":5,"t":0,"ts":null,"conn":0,"kind":"weird","name":"a"}',
    ],
)
def test_strict_stops_at_a_bad_line_tolerant_skips_it(tmp_path: Path, replacement: bytes) -> None:
    events = norman_events()
    path = corrupt(tmp_path, events, 4, replacement)
    seen: list[Event] = []
    with pytest.raises(RecordingCorruptError) as info:
        for event in read_recording(path):
            seen.append(event)  # noqa: PERF402 - what was read before the error
    assert info.value.line == 4 and "bad.jsonl" in str(info.value) and ", line 4:" in str(info.value)
    assert seen == events[:2]
    rec = read_recording(path, strict=False)
    with pytest.warns(RecordingWarning, match="skipped 1 "):
        assert list(rec) == events[:2] + events[3:]
    assert rec.skipped == 1


RAW_OF_ANOTHER_FRAME = (
    b'{"seq":5,"t":0,"ts":null,"conn":0,"kind":"frame","name":"ping","raw":"{\\"name\\":\\"other\\"}"}'
)


def test_raw_that_is_not_the_recorded_frame_fails_when_its_data_is_read(tmp_path: Path) -> None:
    # The reader takes a frame's fields from its line and reads `data` from `raw` only when asked (so a replay
    # never parses a frame twice); a raw text edited out of step with its line is found at that point.
    events = norman_events()
    path = corrupt(tmp_path, events, 4, RAW_OF_ANOTHER_FRAME)
    got = list(read_recording(path))
    assert got[:2] == events[:2] and got[3:] == events[3:]
    assert got[2].name == "ping" and got[2].raw == '{"name":"other"}'
    with pytest.raises(ProtocolError, match=r"event #5 \(ping\) cannot give its data.*recording was (damaged|edited)"):
        _ = got[2].data


def test_raw_that_is_not_the_recorded_frame_is_a_bad_line_without_frame_fields(tmp_path: Path) -> None:
    # A recording whose header does not say `frame_fields` (older writers) has its frames read from raw at once.
    events = norman_events()
    path = corrupt(tmp_path, events, 4, RAW_OF_ANOTHER_FRAME)
    lines = path.read_bytes().split(b"\n")
    assert b'"frame_fields":true' in lines[0]
    lines[0] = lines[0].replace(b',"frame_fields":true', b"")
    lines = [lines[0]] + [_without_fields(line) for line in lines[1:]]
    path.write_bytes(b"\n".join(lines))
    seen: list[Event] = []
    with pytest.raises(RecordingCorruptError) as info:
        for event in read_recording(path):
            seen.append(event)  # noqa: PERF402 - what was read before the error
    assert info.value.line == 4 and "does not parse to the recorded frame 'ping'" in str(info.value)
    assert seen == events[:2]


def _without_fields(line: bytes) -> bytes:
    """An event line as a writer without frame fields wrote it."""
    if not line.strip():
        return line
    doc = json.loads(line)
    if doc.get("kind") == "frame":
        doc = {k: doc[k] for k in ("seq", "t", "ts", "conn", "kind", "name", "raw")}
    return json.dumps(doc, separators=(",", ":")).encode()


def test_many_bad_lines_give_one_warning(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    events = steve_events()
    lines = lines_of(write(tmp_path / "r.jsonl", events))
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b"\n".join([lines[0], *(b"garbage" if i % 2 else line for i, line in enumerate(lines[1:]))]) + b"\n"
    )
    rec = read_recording(path, strict=False)
    got = list(rec)
    assert len(recwarn) == 1 and issubclass(recwarn[0].category, RecordingWarning)
    assert rec.skipped == len(lines[1:]) // 2 and got == events[::2]


def test_cut_last_line(tmp_path: Path) -> None:
    events = norman_events()
    whole = write(tmp_path / "r.jsonl", events).read_bytes()
    cut_at = whole.rindex(b'"summary"') - 1 - 30  # inside the last event line
    path = tmp_path / "cut.jsonl"
    path.write_bytes(whole[:cut_at])
    seen: list[Event] = []
    with pytest.raises(RecordingTruncatedError, match="cut short") as info:
        for event in read_recording(path):
            seen.append(event)  # noqa: PERF402 - what was read before the error
    assert seen == events[:-1] and f"{len(events) - 1} event(s) before it were read" in str(info.value)
    rec = read_recording(path, strict=False)
    with pytest.warns(RecordingWarning):
        assert list(rec) == events[:-1]
    assert rec.skipped == 1 and rec.summary is None
    # Cut exactly after an event's closing brace (the newline lost): the line is complete, nothing is lost.
    end = whole.rindex(b"\n", 0, whole.rindex(b'"summary"'))
    path.write_bytes(whole[:end])
    assert list(read_recording(path)) == events


def test_gzip_cut_short(tmp_path: Path) -> None:
    events = steve_events()
    data = write(tmp_path / "r.jsonl.gz", events).read_bytes()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    seen: list[Event] = []
    with pytest.raises(RecordingTruncatedError, match="gzip"):
        for event in read_recording(path):
            seen.append(event)  # noqa: PERF402 - what was read before the error
    assert seen and seen == events[: len(seen)]
    with pytest.warns(RecordingWarning):
        assert list(read_recording(path, strict=False)) == seen


def test_huge_line_is_refused_without_reading_it(tmp_path: Path) -> None:
    events = norman_events()
    big = Event(0, 0, 0.0, None, "norman", "marker", "anomaly", raw="x" * 300_000).stamped(
        seq=99, conn=0, t=1.0, ts=None
    )
    path = write(tmp_path / "r.jsonl", [*events[:3], big, *events[3:]], make_header(max_frame_bytes=100_000))
    with pytest.raises(LineTooLongError, match="line 5"):
        list(read_recording(path))
    rec = read_recording(path, strict=False)
    with pytest.warns(RecordingWarning, match="longer than"):
        assert list(rec) == events
    assert list(read_recording(path, max_frame_bytes=200_000))[3] == big
    with pytest.raises(LineTooLongError):
        list(read_recording(write(tmp_path / "s.jsonl", events), max_frame_bytes=500))


def test_folder_and_read_events(tmp_path: Path) -> None:
    n, s = norman_events(), steve_events()
    write(tmp_path / "b-steve.jsonl.gz", s)
    write(tmp_path / "a-norman.jsonl", n)
    (tmp_path / "notes.txt").write_text("not a recording")
    assert [p.name for p in recording_files(tmp_path)] == ["a-norman.jsonl", "b-steve.jsonl.gz"]
    # Two streams in one folder are not one stream: refused, naming the files (rl.load reads them file by file).
    with pytest.raises(MixedRecordingsError, match=r"a-norman\.jsonl \(norman global\); b-steve\.jsonl\.gz"):
        read_recording(tmp_path)
    with pytest.raises(MixedRecordingsError):
        list(read_events(tmp_path))
    (tmp_path / "b-steve.jsonl.gz").unlink()
    write(tmp_path / "c-norman.jsonl", n[:3])
    assert list(read_events(tmp_path)) == n + n[:3]
    rec = read_recording(tmp_path)
    assert isinstance(rec, Recording) and len(rec.headers) == 2 and rec.header.dialect == "norman"
    assert "norman" in repr(rec)


_RAW_PING = b'"raw":"{\\"name\\":\\"ping\\"}"'
_EDGE_LINES = [
    b'{"seq":1,"t":1,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1.0,"t":1,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":true,"t":1,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":true,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":"2026-03-01T12:00:00","conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":"2026-03-01T12:00:00+02:00","conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":"2026-03-01T12:00:00.123456789Z","conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":"2026-03-01 12:00:00Z","conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":"2026-03-01","conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":"2026-13-01T12:00:00Z","conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":99999999999999999999999,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":1e999,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b',"seq":2}',
    b'{"seq":1,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b',"watch":{"a":1}}',
    b'{"seq":1,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b',"info":[]}',
    b'{"seq":1,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping",' + _RAW_PING + b',"type":null,"id":7}',
    b'{"seq":1,"t":-0.0,"ts":null,"conn":0,"kind":"frame","name":7,' + _RAW_PING + b"}",
    b'{"seq":1,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping"}',
    b'{"seq":1,"t":0.5,"ts":null,"conn":0,"kind":"frame","name":"ping","raw":"{\\"name\\":\\"ping\\"}","x":[1,{"y":null}]}',
]


@pytest.mark.parametrize("line", _EDGE_LINES, ids=range(len(_EDGE_LINES)))
def test_frame_lines_read_as_decode_event_reads_them(tmp_path: Path, line: bytes) -> None:
    # Frame lines of a frame_fields file take a faster decoder; it must accept, refuse and read exactly as
    # decode_event does, so the fast path is never a second rule.
    path = write(tmp_path / "r.jsonl", [])
    head, *_ = lines_of(path)
    path.write_bytes(head + b"\n" + line + b"\n")
    try:
        expected: Event | None = decode_event(json.loads(line), "norman", frame_fields=True)
    except ValueError:
        expected = None
    rec = read_recording(path, strict=False)
    if expected is None:
        with pytest.warns(RecordingWarning, match="skipped 1 "):
            assert list(rec) == []
    else:
        got = list(rec)
        assert got == [expected] and got[0].ts == expected.ts and type(got[0].t) is float
