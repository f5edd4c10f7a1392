"""Outputs: Parquet round trip, plots, the HTML report."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest
from matplotlib.figure import Figure

import rancherlab as rl
from rancherlab.analysis import _report, frame, plot_rate, plot_states, read_parquet, to_parquet, write_report
from rancherlab.protocol import ANOMALY, CONNECTED, DISCONNECTED, Event, marker, norman, parse_frame, steve

from .conftest import sample_objects

T0 = datetime(2024, 5, 1, 23, 58, tzinfo=UTC)
IMG = '<img src="data:image/png;base64,'


def capture() -> pd.DataFrame:
    """Both dialects, a gap and a reconnect, a scaled deployment that goes through states, across midnight."""
    out: list[Event] = []

    def add(e: Event, conn: int = 1) -> None:
        n = len(out) + 1
        out.append(e.stamped(seq=n, conn=conn, t=n * 20.0, ts=T0 + timedelta(seconds=20 * n)))

    add(marker(CONNECTED, "norman"))
    dep = sample_objects("norman-v3-workload-deployment-audit-response-rancher2.0-docs.json")[0]
    for scale, st, tr in ((1, "active", "no"), (2, "updating", "yes"), (2, "active", "no")):
        add(
            parse_frame(
                norman.change_frame({**copy.deepcopy(dep), "scale": scale, "state": st, "transitioning": tr}), "norman"
            )
        )
    for o in sample_objects("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json"):
        add(parse_frame(norman.change_frame(o), "norman"))
    add(marker(DISCONNECTED, "norman", code=1006, reason=""))
    add(marker(CONNECTED, "norman"), conn=2)
    add(parse_frame("{not json", "norman"), conn=2)
    for p in sample_objects("steve-v1-pods-collection-qa-server-dashboard-blueprint.json"):
        add(
            parse_frame(
                steve.encode_event(
                    "resource.create", data=p, revision=p["metadata"]["resourceVersion"], echo={"resourceType": "pod"}
                ),
                "steve",
            ),
            conn=3,
        )
    add(parse_frame(norman.remove_frame(dep), "norman"), conn=2)
    return frame(out)


def test_parquet_round_trip(tmp_path: Path) -> None:
    df = capture()
    folder = to_parquet(df, tmp_path / "ds")
    parts = sorted(p.relative_to(folder).parent.as_posix() for p in folder.rglob("*.parquet"))
    assert "type=deployment/day=2024-05-01" in parts and "type=deployment/day=2024-05-02" in parts
    assert "type=pod/day=2024-05-02" in parts and any(p.startswith("type=__HIVE_DEFAULT_PARTITION__") for p in parts)
    # any Arrow reader sees the object as JSON text
    table = ds.dataset(folder, partitioning="hive").to_table()
    assert table.num_rows == len(df)
    text = table.filter(ds.field("type") == "pod").column("object")[0].as_py()
    assert json.loads(text)["type"] == "pod"
    back = read_parquet(folder)
    pd.testing.assert_frame_equal(back, df)


def test_parquet_round_trip_with_recording_column(tmp_path: Path) -> None:
    df = capture()
    df["recording"] = pd.Categorical(["a.jsonl"] * 5 + ["b.jsonl"] * (len(df) - 5))
    back = read_parquet(to_parquet(df, tmp_path / "ds"))
    assert back["recording"].astype(str).tolist() == df["recording"].astype(str).tolist()
    assert back["object"].tolist() == df["object"].tolist()


def test_plots_return_figures() -> None:
    df = capture()
    fig = plot_rate(df, freq="10s")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"deployment", "node", "pod"}
    assert len(ax.patches) == 1  # the gap between disconnected and reconnect
    assert any(line.get_linestyle() == ":" for line in ax.lines)  # the reconnect
    fig = plot_states(df, "deployment", "deployment:default:nginx")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["active", "updating"]
    assert isinstance(plot_states(df, "deployment", "nope"), Figure)
    assert isinstance(plot_rate(df.iloc[:0]), Figure)


def test_report_html(tmp_path: Path) -> None:
    df = capture()
    out = write_report(df, tmp_path / "report.html", sources=["cap.jsonl"])
    html = out.read_text(encoding="utf-8")
    # event rate, objects per type, states of the busiest object
    assert html.count(IMG) == 3
    assert "<h2>Anomalies</h2>" in html and "frame is not JSON" in html
    assert "<h2>Most changed fields</h2>" in html and "<td>scale</td>" in html
    assert "cap.jsonl" in html and "<script" not in html
    assert ANOMALY in html


# --- the report of recordings made from the simulator -------------------------------------------------------


class _Tables(HTMLParser):
    """The report's tables as {heading: [rows of cell texts]} (the header row included)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._heading: str | None = None
        self._in: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h2", "td", "th"):
            self._in, self._text = tag, ""
        elif tag == "tr" and self._heading is not None:
            self.tables.setdefault(self._heading, []).append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._heading = self._text.strip()
        elif tag in ("td", "th") and self._heading is not None:
            self.tables[self._heading][-1].append(self._text.strip())
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text += data


def tables(path: Path) -> dict[str, list[dict[str, str]]]:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return {h: [dict(zip(rows[0], r)) for r in rows[1:]] for h, rows in parser.tables.items() if rows}


def _until(what: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two recordings of the simulator: Norman pods with two 1006 drops (three sockets), then Steve pods (one)."""
    folder = tmp_path_factory.mktemp("recordings")
    drops, steady = folder / "a-norman-drops.jsonl", folder / "b-steve.jsonl"
    with rl.Simulator(seed=4, rate=40, norman_ping=0.2, steve_ping=0.2) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]
        fast = {"env": {}, "cli_config": False, "backoff_initial": 0.05, "jitter": False, "credentials": sim.token}
        cap = rl.capture(sim.url, f"project:{project}", types=["pod", "deployment"], record=drops, **fast)
        for connections in (1, 2, 3):
            _until(lambda n=connections: cap.stats.connections == n)  # type: ignore[misc]
            frames = cap.stats.resource_frames + 5
            _until(lambda n=frames: cap.stats.resource_frames >= n)  # type: ignore[misc]
            if connections < 3:
                sim.drop_now()
        cap.stop()
        cap = rl.capture(sim.url, f"steve:{cluster}", watches=[rl.Watch("pod")], record=steady, **fast)
        _until(lambda: cap.stats.resource_frames >= 5)
        cap.stop()
    return drops, steady


def _markers(path: Path, name: str) -> int:
    return sum(1 for e in rl.read_recording(path) if e.kind == "marker" and e.name == name)


def test_report_counts_connections_and_reconnects_per_recording(recordings: tuple[Path, Path], tmp_path: Path) -> None:
    drops, steady = recordings
    assert _markers(drops, CONNECTED) == 3 and _markers(steady, CONNECTED) == 1  # the scenario, read back
    out = write_report([drops, steady], tmp_path / "report.html")
    summary = {row["recording"]: row for row in tables(out)["Summary"]}
    a, b, total = summary["a-norman-drops.jsonl"], summary["b-steve.jsonl"], summary["all 2 recordings"]
    assert (a["connections"], a["reconnects"]) == ("3", "2")
    assert a["disconnects"] == str(_markers(drops, DISCONNECTED))
    assert (b["connections"], b["reconnects"]) == ("1", "0")
    assert (total["connections"], total["reconnects"]) == ("4", "2")
    assert a["events"] == str(len(rl.load(drops))) and b["events"] == str(len(rl.load(steady)))
    assert total["events"] == str(len(rl.load([drops, steady])))
    assert "rancherlab report: 2 recordings" in out.read_text(encoding="utf-8")


def test_rate_plot_draws_no_reconnect_or_gap_at_a_recording_boundary(recordings: tuple[Path, Path]) -> None:
    fig = plot_rate(rl.load(list(recordings)), freq="1s")
    ax = fig.axes[0]
    assert sum(line.get_linestyle() == ":" for line in ax.lines) == 2  # the two reconnects of the first recording
    assert len(ax.patches) == 2  # its two gaps; stopping a capture is its end, not a gap into the next recording


def test_streamed_report_matches_the_frame_and_the_analysis(
    recordings: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = rl.load(list(recordings))
    whole = tables(write_report(df, tmp_path / "frame.html"))
    monkeypatch.setattr(_report, "CHUNK_EVENTS", 7)  # many chunks: every fold carried across their edges
    streamed = tables(write_report(list(recordings), tmp_path / "streamed.html"))
    assert streamed == whole
    assert whole["Summary"][-1]["objects now"] == str(len(rl.state(df)))
    changes = rl.diffs(df).groupby(["type", "path"], observed=True).size()
    shown = {(r["type"], r["path"]): int(r["changes"]) for r in whole["Most changed fields"]}
    assert shown and all(changes[key] == n for key, n in shown.items())
    assert sum(int(r["events"]) for r in whole["Events by kind"]) == len(df)


_REPORT_PEAK = """
import sys, tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path
import rancherlab as rl
from rancherlab.analysis import _report, write_report
from rancherlab.protocol import norman, parse_frame

folder, n = Path(sys.argv[1]), int(sys.argv[2])
t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
header = rl.RecordingHeader("norman", "global", "https://rancher.example", "/v3/subscribe", {}, synthetic=True)
path = folder / f"r{n}.jsonl"
with rl.RecordingWriter(path, header) as w:
    for i in range(n):
        obj = {"id": f"d{i % 20}", "type": "deployment", "scale": i, "state": ("active", "updating")[i % 2]}
        e = parse_frame(norman.change_frame(obj), "norman")
        w.write(e.stamped(seq=i + 1, conn=1, t=i * 0.01, ts=t0 + timedelta(seconds=i * 0.01)))
_report.CHUNK_EVENTS = 400
write_report(path, folder / "warm.html")  # imports and caches first, so the peak is the report's own
tracemalloc.start()
write_report(path, folder / "r.html")
print(tracemalloc.get_traced_memory()[1])
"""


def test_report_of_a_recording_holds_no_more_than_a_chunk(tmp_path: Path) -> None:
    """Streaming: the traced peak of a report does not grow with the recording (400 vs 4,000 change frames).

    Each size is measured in a fresh interpreter, so no thread or cache of another test is counted."""
    peaks = []
    for n in (400, 4_000):
        done = subprocess.run(
            [sys.executable, "-c", _REPORT_PEAK, str(tmp_path), str(n)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        peaks.append(int(done.stdout.split()[-1]))
    small, big = peaks
    assert big < 1.5 * small, (small, big)


def test_rotation_parts_are_one_recording_in_the_report(recordings: tuple[Path, Path], tmp_path: Path) -> None:
    drops, _ = recordings
    source = rl.read_recording(drops)
    folder = tmp_path / "rotated"
    folder.mkdir()
    with rl.RecordingWriter(folder / "rotated.jsonl", source.header, rotate_bytes=4096) as w:
        w.write_many(source)
    assert len(list(folder.iterdir())) > 3
    summary = tables(write_report(folder, tmp_path / "report.html"))["Summary"]
    assert [(r["recording"], r["connections"], r["reconnects"]) for r in summary] == [("rotated.jsonl", "3", "2")]
    ax = plot_rate(rl.load(folder), freq="1s").axes[0]
    assert sum(line.get_linestyle() == ":" for line in ax.lines) == 2
