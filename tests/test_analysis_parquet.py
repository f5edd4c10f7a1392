"""`rl.to_parquet` of recordings (a path or folder, streamed in batches) and the README's DuckDB query on it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from rancherlab.analysis import load, read_parquet, to_parquet
from rancherlab.recording import RecordingTruncatedError, RecordingWarning

from .test_analysis_load import norman_events, steve_events, write

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "recordings" / "samples"


def readme_duckdb_query() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"e\.g\. DuckDB:\s*```sql\n(.*?)```", text, re.DOTALL)
    assert m, "the README's DuckDB example"
    return m.group(1)


def test_to_parquet_of_a_folder_equals_to_parquet_of_its_frame(tmp_path: Path) -> None:
    df = load(SAMPLES)  # three recordings, two dialects, three scopes
    streamed = read_parquet(to_parquet(SAMPLES, tmp_path / "from-path", batch_rows=500))
    pd.testing.assert_frame_equal(streamed, read_parquet(to_parquet(df, tmp_path / "from-frame")))
    order = df.sort_values(["recording", "seq"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, order)
    parts = {p.relative_to(tmp_path / "from-path").parts[0] for p in (tmp_path / "from-path").rglob("*.parquet")}
    assert "type=pod" in parts and "type=cluster" in parts


def test_to_parquet_of_one_file_and_of_damage(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", norman_events(), "norman")
    back = read_parquet(to_parquet(path, tmp_path / "one"))
    pd.testing.assert_frame_equal(back, load(path))
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b'"summary"') - 31])
    with pytest.raises(RecordingTruncatedError):
        to_parquet(path, tmp_path / "strict")
    with pytest.warns(RecordingWarning, match="cut short"):
        back = read_parquet(to_parquet(path, tmp_path / "tolerant", strict=False))
    with pytest.warns(RecordingWarning):
        pd.testing.assert_frame_equal(back, load(path, strict=False))
    assert len(back) == len(load(write(tmp_path / "b.jsonl", norman_events()[:-1], "norman")))


def test_readme_duckdb_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    write(folder / "a-norman.jsonl", norman_events(), "norman")
    write(folder / "b-steve.jsonl", steve_events(), "steve")
    monkeypatch.chdir(tmp_path)
    to_parquet("recordings/", "recordings/parquet")  # as the README writes it
    got = duckdb.sql(readme_duckdb_query()).df()
    df = load(folder)
    frames = df[df["kind"] == "frame"]
    want = frames.groupby(["type", "name"], observed=True).size()
    assert {(t, n): int(c) for t, n, c in zip(got["type"], got["name"], got["events"])} == {
        (t, n): int(c) for (t, n), c in want.items()
    }
    assert got["events"].is_monotonic_decreasing
    last = frames.groupby("type", observed=True)["time"].max()
    for t, ts in zip(got["type"], got["last"]):
        assert pd.Timestamp(ts).tz_localize(None) <= last[t].tz_localize(None)


def test_to_parquet_of_empty_recordings(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [], "norman")
    folder = to_parquet(path, tmp_path / "ds")
    assert ds.dataset(folder, format="parquet", partitioning="hive").to_table().num_rows == 0


def test_pandas_to_parquet_stores_objects_as_json_text(tmp_path: Path) -> None:
    """`df.to_parquet` (pandas, not rl) works on a loaded frame: the object column becomes JSON text."""
    import json

    df = load(SAMPLES / "steve-cluster.jsonl")
    df.to_parquet(tmp_path / "plain.parquet")
    back = pd.read_parquet(tmp_path / "plain.parquet")
    has = df["object"].notna().to_numpy()
    assert [json.loads(t) for t in back["object"][has]] == df["object"][has].tolist()


def test_readme_duckdb_query_over_a_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The recording line carries each frame's type, namespace and state, so SQL over the JSONL needs no parsing.
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"in DuckDB over the JSONL itself:\s*```sql\n(.*?)```", text, re.DOTALL)
    assert m, "the README's DuckDB example over a recording"
    (tmp_path / "recordings").mkdir()
    path = write(tmp_path / "recordings" / "pods.jsonl", steve_events(), "steve")
    monkeypatch.chdir(tmp_path)
    got = duckdb.sql(m.group(1)).df()
    df = load(path)
    want = (
        df[(df["kind"] == "frame") & (df["name"] != "ping")]
        .groupby(["type", "namespace", "state"], observed=True, dropna=False)
        .size()
    )
    got_counts = {
        (t, None if pd.isna(n) else n, None if pd.isna(s) else s): int(c)
        for t, n, s, c in zip(got["type"], got["namespace"], got["state"], got["events"])
    }
    assert got_counts == {
        (t, None if pd.isna(n) else n, None if pd.isna(s) else s): int(c) for (t, n, s), c in want.items() if c
    }
    assert any(n is not None for _, n, _ in got_counts)  # the fields are there, not all null
