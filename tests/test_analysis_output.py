"""Outputs: Parquet round trip, plots, the HTML report."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
from matplotlib.figure import Figure

from rancherlab.analysis import frame, plot_rate, plot_states, read_parquet, to_parquet, write_report
from rancherlab.protocol import ANOMALY, CONNECTED, DISCONNECTED, Event, marker, norman, parse_frame, steve

from .conftest import sample_objects


T0 = datetime(2024, 5, 1, 23, 58, tzinfo=timezone.utc)
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
