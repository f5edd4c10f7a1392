"""A self-contained HTML report of an event frame: one file to attach to an issue or send to a colleague.

Plots are embedded as base64 PNG and there is no script or external link, so it opens anywhere offline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pandas as pd
from matplotlib.figure import Figure

from .. import _version
from ..protocol.event import ANOMALY
from ._diffs import diffs
from ._plots import plot_rate, plot_states
from ._schema import event_names, schema
from ._state import object_rows, state

_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} img{max-width:100%} code{font-size:.9em}
"""
MAX_ROWS: Final = 30


def figure_png(fig: Figure) -> str:
    """A Figure as a data-URI `<img>` tag."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(fig.axes[0].get_title() if fig.axes else "")}">'


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>none</em></p>"
    more = f"<p><em>{len(df) - MAX_ROWS} more rows not shown</em></p>" if len(df) > MAX_ROWS else ""
    return df.head(MAX_ROWS).to_html(index=False, na_rep="", border=0, escape=True) + more


def _busiest_object(df: pd.DataFrame) -> tuple[str, str] | None:
    """The object with the most state changes: the one whose state plot says the most."""
    rows = df[object_rows(df) & df["state"].notna().to_numpy(dtype=bool)]
    if rows.empty:
        return None
    changes = rows.groupby(["type", "id"], observed=True)["state"].nunique().sort_values(ascending=False, kind="stable")
    typ, oid = changes.index[0]
    return str(typ), str(oid)


def sections(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(heading, HTML) pairs of the report body."""
    out: list[tuple[str, str]] = []
    t = df["time"].dropna()
    span = f"{t.min()} → {t.max()}" if not t.empty else "no timestamps"
    summary = pd.DataFrame(
        {
            "events": [len(df)],
            "connections": [df["conn"].nunique()],
            "types": [df["type"].nunique()],
            "objects now": [len(state(df))],
            "time span (UTC)": [span],
        }
    )
    out.append(("Summary", _table(summary)))
    out.append(("Event rate", figure_png(plot_rate(df, freq=_freq(t)))))
    kinds = df.groupby(["dialect", "kind"], observed=True).size().rename("events").reset_index()
    out.append(("Events by kind", _table(kinds)))
    names = event_names(df).sort_values("count", ascending=False, kind="stable")
    out.append(("Object events by type and name", _table(names)))
    out.append(("Objects per type", figure_png(_type_bars(df))))
    marks = df[df["kind"] == "marker"]
    out.append(("Lifecycle markers", _table(marks.groupby("name", observed=True).size().rename("count").reset_index())))
    anomalies = marks[marks["name"] == ANOMALY]
    if not anomalies.empty:
        errs = pd.DataFrame({"seq": anomalies["seq"], "error": [(i or {}).get("error", "") for i in anomalies["info"]]})
        out.append(("Anomalies", _table(errs)))
    d = diffs(df)
    if not d.empty:
        top = (
            d.groupby(["type", "path"], observed=True)
            .size()
            .rename("changes")
            .reset_index()
            .sort_values("changes", ascending=False, kind="stable")
        )
        out.append(("Most changed fields", _table(top)))
    busiest = _busiest_object(df)
    if busiest is not None:
        out.append((f"States of {busiest[0]} {busiest[1]}", figure_png(plot_states(df, *busiest))))
    cat = schema(df)
    if not cat.empty:
        flagged = cat[(cat["conflict"] | cat["late"]).fillna(False)][
            ["dialect", "type", "path", "types", "conflict", "late"]
        ]
        out.append(("Type conflicts and late keys", _table(flagged)))
    return out


def _freq(times: pd.Series) -> str:
    if times.empty:
        return "1min"
    seconds = (times.max() - times.min()).total_seconds()
    return (
        "1s"
        if seconds <= 120
        else "10s"
        if seconds <= 1200
        else "1min"
        if seconds <= 7200
        else "10min"
        if seconds <= 86400
        else "1h"
    )


def _type_bars(df: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Object events per type")
    counts = df[object_rows(df)]["type"].astype(str).value_counts().head(20)
    if counts.empty:
        ax.text(0.5, 0.5, "no object events", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.barh(counts.index[::-1], counts.to_numpy()[::-1])
        ax.set_xlabel("events")
    return fig


def write_report(
    df: pd.DataFrame, out: str | Path, *, title: str = "rancherlab report", sources: Sequence[str] = ()
) -> Path:
    """Write the HTML report of `df` to `out`; returns the path."""
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections(df))
    src = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in sources)
    doc = (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        + (f"<ul>{src}</ul>\n" if src else "")
        + body
        + f"<p><small>rancherlab {html.escape(_version.__version__)}</small></p></body></html>\n"
    )
    path = Path(out)
    path.write_text(doc, encoding="utf-8")
    return path
