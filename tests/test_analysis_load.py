"""Recordings on disk → one frame; the `schema` and `report` commands on top."""

from __future__ import annotations

import argparse
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rancherlab.analysis import COLUMNS, frame, load
from rancherlab.analysis._frame import concat_frames
from rancherlab.analysis._load import iter_frames
from rancherlab.cli import main
from rancherlab.cli import report as report_cmd
from rancherlab.cli import schema as schema_cmd
from rancherlab.protocol import ANOMALY, CONNECTED, DISCONNECTED, Event, marker, norman, parse_frame, steve
from rancherlab.recording import (
    RecordingCorruptError,
    RecordingHeader,
    RecordingWarning,
    RecordingWriter,
    read_recording,
)

from .conftest import sample_objects

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def write(path: Path, events: list[Event], dialect: str, **kw: Any) -> Path:
    endpoint = "/v3/subscribe" if dialect == "norman" else "/v1/subscribe"
    header = RecordingHeader(
        dialect,
        "global" if dialect == "norman" else "steve",  # type: ignore[arg-type]
        "https://rancher.example",
        endpoint,
        {},
        synthetic=True,
    )
    with RecordingWriter(path, header, **kw) as w:
        w.write_many(events)
    return path


def norman_events() -> list[Event]:
    dep = sample_objects("norman-v3-workload-deployment-audit-response-rancher2.0-docs.json")[0]
    texts = [norman.change_frame({**copy.deepcopy(dep), "scale": s}) for s in (2, 2, 3)]
    texts += [
        norman.change_frame(o)
        for f in (
            "norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json",
            "norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json",
            "norman-v3-users-collection-qa-server-dashboard-blueprint.json",
            "norman-v3-tokens-collection-qa-server-dashboard-blueprint.json",
        )
        for o in sample_objects(f)
    ]
    out = [marker(CONNECTED, "norman")] + [parse_frame(t, "norman") for t in texts]
    out.insert(3, parse_frame(norman.PING, "norman"))
    out.append(marker(DISCONNECTED, "norman", code=1006))
    return [e.stamped(seq=n, conn=1, t=n * 2.0, ts=T0 + timedelta(seconds=2 * n)) for n, e in enumerate(out, 1)]


def steve_events() -> list[Event]:
    objs = [
        *sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json"),
        *sample_objects("steve-v1-secrets-collection-rancher-integration-testdata.json"),
    ]
    out = [marker(CONNECTED, "steve")] + [
        parse_frame(
            steve.encode_event(
                "resource.create", data=o, revision=o["metadata"]["resourceVersion"], echo={"resourceType": o["type"]}
            ),
            "steve",
        )
        for o in objs
    ]
    out.append(parse_frame(steve.ping("v2.9.0"), "steve"))
    return [e.stamped(seq=n, conn=1, t=n * 3.0, ts=T0 + timedelta(seconds=3 * n)) for n, e in enumerate(out, 1)]


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    folder = tmp_path / "recs"
    folder.mkdir()
    write(folder / "a-norman.jsonl", norman_events(), "norman")
    write(folder / "b-steve.jsonl", steve_events(), "steve")
    return folder


def test_load_one_file_matches_frame(recordings: Path) -> None:
    df = load(recordings / "a-norman.jsonl")
    expected = frame(norman_events())
    assert list(df.columns) == [*COLUMNS, "recording", "scope"]
    assert df["recording"].astype(str).unique().tolist() == ["a-norman.jsonl"]
    pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]), expected)
    assert "ping" not in set(df["name"])
    assert load(recordings / "a-norman.jsonl", pings=True)["name"].astype(str).tolist().count("ping") == 1


def test_load_folder_and_list_as_one_frame(recordings: Path) -> None:
    df = load(recordings, progress=False)
    sizes = {"a-norman.jsonl": len(frame(norman_events())), "b-steve.jsonl": len(frame(steve_events()))}
    assert df["recording"].astype(str).value_counts().to_dict() == sizes
    assert str(df["recording"].dtype) == "category"
    assert set(df["dialect"]) == {"norman", "steve"}
    same = load([recordings / "a-norman.jsonl", recordings / "b-steve.jsonl"], progress=False)
    pd.testing.assert_frame_equal(df, same)


def test_load_with_progress_bar(recordings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(load(recordings, progress=True)) == len(frame(norman_events())) + len(frame(steve_events()))
    assert "loading recordings" in capsys.readouterr().err


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.jsonl")
    with pytest.raises(FileNotFoundError):
        load(tmp_path)


def run(module: Any, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rancherlab")
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_schema_command_markdown_lists_every_type(recordings: Path, tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    assert run(schema_cmd, ["schema", str(recordings), "--format", "md", "--out", str(out)]) == 0
    md = out.read_text(encoding="utf-8")
    for dialect, typ in (
        ("norman", "deployment"),
        ("norman", "node"),
        ("norman", "cluster"),
        ("norman", "user"),
        ("norman", "token"),
        ("steve", "pod"),
        ("steve", "secret"),
    ):
        assert f"## {dialect} `{typ}`" in md
    assert "`resource.change` ×3" in md and "`resource.create` ×3" in md
    scale = next(line for line in md.splitlines() if line.startswith("| `scale` "))
    assert "integer ×3" in scale and "| 1 |" in scale  # one change: 2 → 3


def test_schema_command_json(recordings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(schema_cmd, ["schema", str(recordings / "b-steve.jsonl"), "--format", "json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert set(ref["types"]) == {"steve/pod", "steve/secret"}
    pod = ref["types"]["steve/pod"]
    assert pod["events"] == {"resource.create": 3} and pod["objects"] == 3
    assert pod["json_schema"]["properties"]["metadata"]["properties"]["state"]["properties"]["name"]["type"] == "string"
    assert "metadata" in pod["json_schema"]["required"]


def test_report_command(recordings: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert run(report_cmd, ["report", str(recordings), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.count('<img src="data:image/png;base64,') == 3
    assert "a-norman.jsonl" in html


def test_commands_report_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", str(tmp_path / "nope.jsonl")]) == 4  # commands raise; main maps errors to codes
    assert "no such recording" in capsys.readouterr().err


def odd_events(dialect: str) -> list[Event]:
    """Everything the fast path must hand to the parser, mixed with plain frames."""
    pod = sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")[0]
    if dialect == "steve":
        texts = [
            steve.encode_event("resource.start", data={"type": "subscribe", "links": {}}, echo={"resourceType": "pod"}),
            steve.encode_event("resource.change", data=pod, echo={"resourceType": "pod", "namespace": "default"}),
            '{"name":"resource.change","resourceType":"pod","data":{"type":"pod","links":{},"message":"too old"}}\n',
            steve.error_event("too old resource version: 1 (5)", echo={"resourceType": "pod"}),
            steve.encode_event(
                "resource.changes", revision="9", echo={"resourceType": "pod", "mode": "resource.changes"}
            ),
            '{"name":"resource.change","data":{"id":"x/huge","type":"pod","n":123456789012345678901234567890,"metadata":{}}}',
            "{not json",
        ]
    else:
        user = sample_objects("norman-v3-users-collection-qa-server-dashboard-blueprint.json")[0]
        texts = [
            norman.change_frame(user),
            '{"name":"resource.change","data":null}',
            '{"name":"resource.change","resourceType":"pod","data":{"type":"pod"}}',
            '{"name":"resource.change","resourceId":"1i1","data":null}',
            norman.remove_frame(user),
            '{"name":"logout","data":{}}',
        ]
    out = [marker(CONNECTED, dialect, url="wss://r/x")] + [parse_frame(t, dialect) for t in texts]  # type: ignore[arg-type]
    out.append(
        parse_frame(
            norman.change_frame(sample_objects("norman-v3-tokens-collection-qa-server-dashboard-blueprint.json")[0]),
            "norman",
        ).replace(kind="snapshot", dialect=dialect)
    )
    out.append(marker(DISCONNECTED, dialect, code=1006))  # type: ignore[arg-type]
    return [e.stamped(seq=n, conn=1, t=n * 1.0, ts=T0 + timedelta(seconds=n)) for n, e in enumerate(out, 1)]


@pytest.mark.parametrize("dialect", ["norman", "steve"])
def test_fast_path_equals_the_reader(tmp_path: Path, dialect: str) -> None:
    path = write(tmp_path / "odd.jsonl.gz", odd_events(dialect), dialect)
    df = load(path)
    expected = frame(read_recording(path))
    pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]), expected)
    assert ANOMALY in set(df["name"])


def test_rotation_parts_are_one_recording(tmp_path: Path) -> None:
    write(tmp_path / "cap.jsonl", norman_events(), "norman", rotate_bytes=4000)
    assert len(list(tmp_path.iterdir())) > 2
    df = load(tmp_path)
    assert df["recording"].astype(str).unique().tolist() == ["cap.jsonl"]
    assert df["seq"].tolist() == frame(norman_events())["seq"].tolist()


def test_damaged_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", norman_events(), "norman")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:4], b'{"seq": "x"}\n', *lines[4:-1], lines[-1][:10]]))
    with pytest.raises(RecordingCorruptError, match="line 5"):
        load(path)
    with pytest.warns(RecordingWarning, match="skipped 2"):
        df = load(path, strict=False)
    assert len(df) == len(frame(norman_events()))


def test_each_event_is_held_once(recordings: Path) -> None:
    """The object column parses its cells from the raw text the raw column holds: the same Arrow buffers."""
    df = load(recordings / "b-steve.jsonl")
    frames = (df["kind"] == "frame").to_numpy() & df["type"].notna().to_numpy()
    objects, raw = df["object"].array, df["raw"].array
    assert objects._wrapped[frames].all()  # resource frames keep no text of their own
    own = objects._own.combine_chunks()
    assert own.filter(frames).null_count == int(frames.sum())
    raw_buffers = {b.address for c in raw._pa_array.chunks for b in c.buffers() if b is not None}
    assert {b.address for c in objects._raw.chunks for b in c.buffers() if b is not None} <= raw_buffers
    first = int(frames.argmax())
    assert df["object"].iloc[first] == json.loads(df["raw"].iloc[first])["data"]


def test_iter_frames_batches_are_bounded_and_never_span_files(recordings: Path) -> None:
    batches = list(iter_frames(recordings, batch_rows=4))
    assert all(0 < len(b) <= 4 for b in batches)
    assert all(b["recording"].nunique() == 1 for b in batches)
    pd.testing.assert_frame_equal(concat_frames(batches), load(recordings))
