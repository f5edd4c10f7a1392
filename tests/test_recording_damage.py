"""Damaged recordings, the whole kind: what a crash or a cut transfer leaves is read by every reader and
every command (`rl.load`, `read_recording`, `rancherlab schema`, `rancherlab report`), what was skipped is
said, and an over-long line is streamed past, never held. Folders mixing streams: `rl.load` reads them file
by file; `read_recording`, `replay` and `serve` refuse them, naming the files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from rancherlab.analysis import frame, load, reference
from rancherlab.analysis._load import iter_frames
from rancherlab.analysis._reference import ReferenceBuilder
from rancherlab.recording import (
    VERSION,
    LineTooLongError,
    MixedRecordingsError,
    NoRecordingsError,
    RecordingCorruptError,
    RecordingFormatError,
    RecordingHeader,
    RecordingTruncatedError,
    RecordingVersionError,
    RecordingWarning,
    RecordingWriter,
    read_recording,
)
from rancherlab.replay import replay

from .test_analysis_load import norman_events, steve_events, write

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "recordings" / "samples"


def good(tmp_path: Path, name: str = "rec.jsonl") -> tuple[Path, bytes]:
    events = norman_events() if "norman" in name or "steve" not in name else steve_events()
    path = write(tmp_path / name, events, "steve" if "steve" in name else "norman")
    return path, path.read_bytes()


def cut_mid_line(tmp_path: Path) -> tuple[Path, int]:
    path, data = good(tmp_path)
    path.write_bytes(data[: data.rindex(b'"summary"') - 31])  # inside the last event line
    return path, 1


def flushed_gzip(tmp_path: Path) -> tuple[Path, int, bytes]:
    """A gzip recording written in two batches: (path, size after the first batch's sync flush, bytes)."""
    events = norman_events()
    path = tmp_path / "rec.jsonl.gz"
    header = RecordingHeader("norman", "global", "https://rancher.example", "/v3/subscribe", {}, synthetic=True)
    with RecordingWriter(path, header) as w:
        w.write_many(events[:6])  # flushed (Z_SYNC_FLUSH): complete lines up to here
        flushed = path.stat().st_size
        w.write_many(events[6:])
    return path, flushed, path.read_bytes()


def cut_gzip(tmp_path: Path) -> tuple[Path, int]:
    path, flushed, data = flushed_gzip(tmp_path)
    path.write_bytes(data[: flushed + (len(data) - flushed) // 2])
    return path, 1


def garbage_lines(tmp_path: Path) -> tuple[Path, int]:
    path, data = good(tmp_path)
    lines = data.splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:3], b"\x00\xff garbage\n", *lines[3:6], b'{"seq": "x"}\n', *lines[6:]]))
    return path, 2


def enormous_line(tmp_path: Path) -> tuple[Path, int]:
    path, data = good(tmp_path)
    lines = data.splitlines(keepends=True)
    lines[0] = lines[0].replace(b'"max_frame_bytes":67108864', b'"max_frame_bytes":1048576')
    assert b'"max_frame_bytes":1048576' in lines[0]
    # 8 MB of one JSON string: past the 2 MB a recording with max_frame_bytes 1 MB accepts.
    huge = b'{"seq":99,"t":0,"ts":null,"conn":1,"kind":"marker","name":"x","raw":"' + b"a" * (8 << 20) + b'"}\n'
    path.write_bytes(b"".join([*lines[:4], huge, *lines[4:]]))
    return path, 1


DAMAGES: dict[str, Callable[[Path], tuple[Path, int]]] = {
    "cut-mid-line": cut_mid_line,
    "cut-gzip": cut_gzip,
    "garbage-lines": garbage_lines,
    "enormous-line": enormous_line,
}
STRICT_ERRORS = {
    "cut-mid-line": RecordingTruncatedError,
    "cut-gzip": RecordingTruncatedError,
    "garbage-lines": RecordingCorruptError,
    "enormous-line": LineTooLongError,
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_load_and_read_recording_agree_on_every_damage(tmp_path: Path, damage: str) -> None:
    path, n_skipped = DAMAGES[damage](tmp_path)
    with pytest.raises(STRICT_ERRORS[damage]):
        load(path)
    with pytest.raises(STRICT_ERRORS[damage]):
        list(read_recording(path))
    rec = read_recording(path, strict=False)
    with pytest.warns(RecordingWarning, match=f"skipped {n_skipped} unreadable line"):
        events = list(rec)
    assert rec.skipped == n_skipped and events
    with pytest.warns(RecordingWarning, match=f"skipped {n_skipped} unreadable line") as got:
        df = load(path, strict=False)
    assert len(got) == 1  # one warning per load, with the counts
    # Every complete event is kept, exactly as the reader gives it.
    pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]), frame(events))


def test_gzip_cut_short_is_not_a_bare_eoferror(tmp_path: Path) -> None:
    """The example of the issue: `rl.load(strict=False)` on a cut gzip raised EOFError and returned nothing."""
    path, _ = cut_gzip(tmp_path)
    with pytest.raises(RecordingTruncatedError, match="gzip stream is cut short"):
        load(path)
    with pytest.warns(RecordingWarning, match="cut short"):
        df = load(path, strict=False)
    with pytest.warns(RecordingWarning):
        assert len(df) == len(frame(read_recording(path, strict=False))) > 0


def test_enormous_line_is_streamed_past_never_held(tmp_path: Path) -> None:
    path, _ = enormous_line(tmp_path)
    assert path.stat().st_size > 8 << 20
    for read in (
        lambda: list(read_recording(path, strict=False)),
        lambda: list(iter_frames(path, strict=False)),
    ):
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecordingWarning)
            read()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 4 << 20, f"peak {peak} bytes while skipping an 8 MB line"


@pytest.mark.parametrize("kind", ["empty", "future-version", "not-a-recording", "header-only"])
def test_files_without_a_usable_header_in_a_folder(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "recs"
    folder.mkdir()
    write(folder / "a.jsonl", norman_events(), "norman")
    bad = folder / "b.jsonl"
    header, *rest = (folder / "a.jsonl").read_bytes().splitlines(keepends=True)
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "future-version":
        doc = json.loads(header)
        doc["version"] = VERSION + 1
        bad.write_bytes(json.dumps(doc).encode() + b"\n" + b"".join(rest))
    elif kind == "not-a-recording":
        bad.write_bytes(b"hello\nworld\n")
    else:  # killed right after the header: a valid, empty recording
        bad.write_bytes(header)
    expected = frame(norman_events())
    if kind == "header-only":
        df = load(folder)
        assert len(df) == len(expected) and list(read_recording(bad)) == []
        return
    error = RecordingVersionError if kind == "future-version" else RecordingFormatError
    with pytest.raises(error):
        load(folder)
    with pytest.raises(error):
        read_recording(folder)
    with pytest.warns(RecordingWarning, match="skipped 1 unreadable file") as got:
        df = load(folder, strict=False)
    assert len(got) == 1 and "b.jsonl" in str(got[0].message)
    pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]), expected)
    rec = read_recording(folder, strict=False)
    assert [name for name, _ in rec.skipped_files] == ["b.jsonl"]
    with pytest.warns(RecordingWarning, match="1 file"):
        assert list(rec) == norman_events()
    with pytest.raises(error):  # one file named: there is nothing else to read, so it says why
        read_recording(bad, strict=False)


def test_missing_and_empty_folders_are_one_error(tmp_path: Path) -> None:
    for reader in (load, read_recording, lambda p: list(iter_frames(p))):
        with pytest.raises(NoRecordingsError, match="no such recording"):
            reader(tmp_path / "nope.jsonl")
        with pytest.raises(NoRecordingsError, match="holds no recordings"):
            reader(tmp_path)
    assert issubclass(NoRecordingsError, FileNotFoundError)


def test_mixed_folder_loads_file_by_file_keeping_dialect_and_scope() -> None:
    df = load(SAMPLES)
    per_file = df.groupby("recording", observed=True)[["dialect", "scope"]].agg(lambda s: set(s.astype(str)))
    assert per_file.to_dict("index") == {
        "norman-global.jsonl": {"dialect": {"norman"}, "scope": {"global"}},
        "norman-project.jsonl": {"dialect": {"norman"}, "scope": {"project:c-ss9wd:p-hvqwn"}},
        "steve-cluster.jsonl": {"dialect": {"steve"}, "scope": {"steve:c-ss9wd"}},
    }
    for name in per_file.index:
        one = load(SAMPLES / name)
        pd.testing.assert_frame_equal(
            df[df["recording"] == name].drop(columns=["recording", "scope"]).reset_index(drop=True),
            one.drop(columns=["recording", "scope"]),
            check_categorical=False,
        )


def test_mixed_folder_is_refused_by_the_stream_readers_naming_the_files() -> None:
    names = ("norman-global.jsonl", "norman-project.jsonl", "steve-cluster.jsonl")
    for read in (lambda: read_recording(SAMPLES), lambda: list(replay(SAMPLES))):
        with pytest.raises(MixedRecordingsError) as info:
            read()
        assert all(n in str(info.value) for n in names) and "rl.load" in str(info.value)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    return subprocess.run(
        [sys.executable, "-m", "rancherlab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_serve_refuses_a_mixed_folder_naming_the_files() -> None:
    r = cli("serve", str(SAMPLES), "--port", "0")
    said = r.stdout + r.stderr  # where `serve` prints its errors is the exit-code work's to settle
    assert r.returncode != 0 and "Traceback" not in said
    assert "steve-cluster.jsonl" in said and "norman-global.jsonl" in said


def damaged_folder(tmp_path: Path) -> Path:
    """Every kind at once, as a crash and a cut copy leave them, next to an intact recording."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    for i, make in enumerate(DAMAGES.values()):
        sub = tmp_path / f"d{i}"
        sub.mkdir()
        path, _ = make(sub)
        path.rename(folder / f"{i}-{path.name}")
    (folder / "9-empty.jsonl").write_bytes(b"")
    write(folder / "a-intact.jsonl", steve_events(), "steve")
    return folder


@pytest.mark.parametrize("command", ["schema", "report"])
def test_commands_summarise_damaged_recordings(tmp_path: Path, command: str) -> None:
    folder = damaged_folder(tmp_path)
    out = tmp_path / f"out.{command}"
    r = cli(command, str(folder), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith(f"rancherlab {command}:")]
    assert len(lines) == 1, r.stderr
    assert "skipped 5 unreadable line(s) and 1 unreadable file(s)" in lines[0] and "--strict" in lines[0]
    text = out.read_text(encoding="utf-8")
    assert "a-intact.jsonl" in text and "3-rec.jsonl" in text  # the damaged files are summarised too
    strict = cli(command, str(folder), "--out", str(out), "--strict")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert strict.stderr.startswith(f"rancherlab {command}: ") and len(strict.stderr.splitlines()) == 1


def test_schema_of_a_recording_a_kill_left(tmp_path: Path) -> None:
    """Cut mid-line and gzip cut: `schema` writes the reference of what is there, exit 0."""
    for make in (cut_mid_line, cut_gzip):
        sub = tmp_path / make.__name__
        sub.mkdir()
        path, _ = make(sub)
        r = cli("schema", str(path), "--format", "json")
        assert r.returncode == 0 and "cut short" in r.stderr and "Traceback" not in r.stderr
        assert json.loads(r.stdout)["types"]


def test_streamed_reference_equals_the_loaded_one(tmp_path: Path) -> None:
    folder = tmp_path / "recs"
    folder.mkdir()
    write(folder / "a-norman.jsonl", norman_events(), "norman")
    write(folder / "b-steve.jsonl", steve_events(), "steve")
    whole = reference(load(folder), sources=["x"])
    for rows in (1, 2, 5):
        builder = ReferenceBuilder()
        for batch in iter_frames(folder, batch_rows=rows):
            builder.add(batch)
        assert builder.result(sources=["x"]) == whole
    assert any(f["changes"] for t in whole["types"].values() for f in t["fields"])


def test_gzip_garbage_after_a_cut_member(tmp_path: Path) -> None:
    """A gzip recording cut inside its second flush, then garbage: every event of the first flush is read."""
    path, flushed, data = flushed_gzip(tmp_path)
    path.write_bytes(data[: flushed + (len(data) - flushed) // 2] + b"\x1f\x8b\x08garbage")
    with pytest.raises(RecordingTruncatedError):
        load(path)
    with pytest.warns(RecordingWarning, match="cut short"):
        df = load(path, strict=False)
    first = frame(norman_events()[:6])
    assert len(first) <= len(df) < len(frame(norman_events()))
    pd.testing.assert_frame_equal(df.drop(columns=["recording", "scope"]).iloc[: len(first)], first)
