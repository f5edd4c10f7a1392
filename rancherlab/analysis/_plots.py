"""Plots of an event frame. Figures are built with `matplotlib.figure.Figure`, never pyplot, so library
code leaves the global pyplot state (and the user's backend) alone and works headless; Jupyter shows the
returned Figure, and `fig.savefig(...)` writes it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..protocol.event import CONNECTED, DISCONNECTED
from ._state import is_removal, object_rows

TOP_TYPES: Final = 8


def _naive(times: pd.Series) -> np.ndarray:
    """UTC datetimes without a zone: matplotlib plots datetime64 natively, with no pandas converter."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _empty(fig: Figure, ax: object, text: str) -> Figure:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)  # type: ignore[attr-defined]
    return fig


def plot_rate(df: pd.DataFrame, freq: str = "1min", *, top: int = TOP_TYPES) -> Figure:
    """Object events per `freq` bucket over time, one line per type (the `top` busiest, the rest as "other").

    Shaded spans are gaps (a `disconnected` marker until the next `connected`); dotted lines mark reconnects
    (every `connected` after the first). Both say "no data here" is loss, not silence.
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Event rate by type")
    rows = df[object_rows(df) & df["time"].notna().to_numpy(dtype=bool)]
    if rows.empty:
        return _empty(fig, ax, "no object events")
    types = rows["type"].astype(str)
    busiest = types.value_counts().index[:top]
    label = types.where(types.isin(busiest), "other")
    counts = (
        pd.DataFrame({"time": rows["time"], "type": label})
        .groupby([pd.Grouper(key="time", freq=freq), "type"])
        .size()
        .unstack(fill_value=0)
    )
    when = _naive(counts.index.to_series())
    for col in counts.columns:
        ax.plot(when, counts[col].to_numpy(), drawstyle="steps-post", label=str(col))
    _mark_connections(ax, df)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"events per {freq}")
    ax.legend(loc="upper left", fontsize="small", ncols=2)
    return fig


def _mark_connections(ax: object, df: pd.DataFrame) -> None:
    marks = df[(df["kind"] == "marker") & df["name"].isin((CONNECTED, DISCONNECTED)) & df["time"].notna()]
    if marks.empty:
        return
    names = marks["name"].astype(str).tolist()
    times = _naive(marks["time"])
    end = _naive(df["time"].dropna()).max()
    seen_connect = False
    gap_start = None
    for name, when in zip(names, times):
        if name == DISCONNECTED and gap_start is None:
            gap_start = when
        elif name == CONNECTED:
            if gap_start is not None:
                ax.axvspan(gap_start, when, color="tab:red", alpha=0.15, label="_gap")  # type: ignore[attr-defined]
                gap_start = None
            if seen_connect:
                ax.axvline(when, color="tab:green", linestyle=":", label="_reconnect")  # type: ignore[attr-defined]
            seen_connect = True
    if gap_start is not None:
        ax.axvspan(gap_start, max(end, gap_start), color="tab:red", alpha=0.15)  # type: ignore[attr-defined]


def plot_states(df: pd.DataFrame, type: str, id: str) -> Figure:  # noqa: A002 - the domain words
    """One object's `state` over time as a step line; transitioning versions in orange, errors in red,
    removal marked with a black x."""
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(f"{type} {id}")
    mask = (
        object_rows(df)
        & (df["type"] == type).to_numpy(dtype=bool)
        & (df["id"] == id).fillna(False).to_numpy(dtype=bool)
    )
    rows = df[mask & df["time"].notna().to_numpy(dtype=bool)]
    if rows.empty:
        return _empty(fig, ax, "no events for this object")
    states = rows["state"].astype(object).where(rows["state"].notna(), "(none)").tolist()
    levels = list(dict.fromkeys(states))
    y = np.array([levels.index(s) for s in states])
    when = _naive(rows["time"])
    ax.step(when, y, where="post", color="tab:blue")
    trans = rows["transitioning"].astype(object).tolist()
    colors = ["tab:red" if t == "error" else "tab:orange" if t == "yes" else "tab:blue" for t in trans]
    ax.scatter(when, y, c=colors, zorder=3)
    gone = [is_removal(n, d, s) for n, d, s in zip(rows["name"], rows["dialect"], rows["state"])]
    if any(gone):
        ax.scatter(when[gone], y[gone], marker="x", color="black", s=80, zorder=4, label="removed")
        ax.legend(loc="upper left", fontsize="small")
    ax.set_yticks(range(len(levels)), levels)
    ax.set_xlabel("time (UTC)")
    return fig
