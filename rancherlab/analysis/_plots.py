"""Plots of an event frame. Figures are built as `matplotlib.figure.Figure` objects, never through pyplot, so
library code leaves the global pyplot state (and the user's backend) alone and works headless; `fig.savefig(...)`
writes one.

How a plot shows in Jupyter: every plot function returns a `Plot`, a `Figure` subclass with `_repr_png_`.
A bare `Figure` has no image formatter until pyplot or `%matplotlib inline` registers one, so in a fresh kernel
it displayed as `<Figure size 1000x400 with 1 Axes>`. The choice is a rich-display method on the figures
rancherlab returns rather than activating pyplot or registering a kernel-wide formatter for every `Figure`:
importing rancherlab changes nothing for the user's own figures, nothing is drawn twice (the figure is not
managed by pyplot, so the inline backend's end-of-cell flush never sees it; when `%matplotlib inline` is active
its formatter for `Figure` takes precedence and yields the same single PNG), and scripts need no GUI backend.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..protocol.event import CONNECTED, DISCONNECTED
from ._state import is_removal, object_rows

TOP_TYPES: Final = 8
PNG_DPI: Final = 100


class Plot(Figure):
    """A matplotlib `Figure` that shows itself as a PNG when it is the last expression of a Jupyter cell
    (`_repr_png_`), with no `%matplotlib inline` and no pyplot. Everything else is `Figure`'s: `savefig`,
    `axes`, `add_subplot` ...
    """

    def _repr_png_(self) -> bytes:
        """The figure as PNG bytes at `PNG_DPI` dots per inch (a 10 x 4 inch plot is 1000 x 400 pixels)."""
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=PNG_DPI)
        return buf.getvalue()


def _naive(times: pd.Series) -> np.ndarray:
    """UTC datetimes without a zone: matplotlib plots datetime64 natively, with no pandas converter."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _empty(fig: Plot, ax: object, text: str) -> Plot:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)  # type: ignore[attr-defined]
    return fig


@dataclass
class Connections:
    """One recording's connection history, from its `connected` / `disconnected` markers in recording order.

    `connections` counts `connected` markers (one per socket opened), `reconnects` the ones after the first,
    `disconnects` the `disconnected` markers. `gaps` are (down, up) spans from a `disconnected` marker to the
    next `connected` (or to the recording's end, given to `end`); `reconnect_times` the times of the
    reconnects. Times are naive UTC `datetime64[us]`. A recording is one client's stream: the first
    `connected` of the next recording is that recording's first connection, never a reconnect.
    """

    connections: int = 0
    disconnects: int = 0
    gaps: list[tuple[np.datetime64, np.datetime64]] = field(default_factory=list)
    reconnect_times: list[np.datetime64] = field(default_factory=list)
    _down: np.datetime64 | None = None

    @property
    def reconnects(self) -> int:
        return max(self.connections - 1, 0)

    def see(self, name: str, when: np.datetime64 | None) -> None:
        """Account one marker (`when` None or NaT: counted, not drawn)."""
        if when is not None and np.isnat(when):
            when = None
        if name == DISCONNECTED:
            self.disconnects += 1
            if self._down is None:
                self._down = when
        elif name == CONNECTED:
            self.connections += 1
            if self._down is not None and when is not None:
                self.gaps.append((self._down, when))
            self._down = None
            if self.connections > 1 and when is not None:
                self.reconnect_times.append(when)

    def end(self, when: np.datetime64 | None) -> None:
        """The recording ended at `when`: a gap still open lasts until then (a last `disconnected` with nothing
        after it, as when a capture is stopped, is the end of the recording, not a gap)."""
        if self._down is not None and when is not None and not np.isnat(when) and when > self._down:
            self.gaps.append((self._down, when))
        self._down = None


def connections(df: pd.DataFrame) -> dict[str, Connections]:
    """`Connections` per recording of `df` (by its `recording` column; one recording "" without it)."""
    recordings = df["recording"].astype(object) if "recording" in df.columns else pd.Series("", index=df.index)
    out: dict[str, Connections] = {}
    ends: dict[str, np.datetime64] = {}
    timed = df["time"].notna().to_numpy(dtype=bool)
    if timed.any():
        last = pd.DataFrame({"r": recordings[timed].astype(str), "time": df["time"][timed]}).groupby("r")["time"].max()
        ends = dict(zip(last.index, _naive(last)))
    for r in dict.fromkeys(recordings.astype(str).tolist()):
        out[r] = Connections()
    marks = (df["kind"] == "marker").to_numpy(dtype=bool) & df["name"].isin((CONNECTED, DISCONNECTED)).to_numpy(
        dtype=bool
    )
    rows = df[marks]
    times = _naive(rows["time"])
    for r, name, when in zip(recordings[marks].astype(str).tolist(), rows["name"].astype(str).tolist(), times):
        out[r].see(name, when)
    for r, track in out.items():
        track.end(ends.get(r))
    return out


def rate_counts(df: pd.DataFrame, freq: str = "1min") -> pd.DataFrame:
    """Object events per `freq` bucket and type: index the bucket starts (UTC, tz-aware), one column per type."""
    rows = df[object_rows(df) & df["time"].notna().to_numpy(dtype=bool)]
    if rows.empty:
        return pd.DataFrame()
    return (
        pd.DataFrame({"time": rows["time"], "type": rows["type"].astype(str)})
        .groupby([pd.Grouper(key="time", freq=freq), "type"])
        .size()
        .unstack(fill_value=0)
    )


def plot_rate(df: pd.DataFrame, freq: str = "1min", *, top: int = TOP_TYPES) -> Plot:
    """Object events per `freq` bucket over time, one line per type (the `top` busiest, the rest as "other").

    Shaded spans are gaps (a `disconnected` marker until the next `connected`); dotted lines mark reconnects
    (every `connected` after the first of its recording: with a `recording` column, as `load` adds, the start
    of another recording is not a reconnect). Both say "no data here" is loss, not silence. Returns a `Plot`
    (a `Figure` that shows in Jupyter).
    """
    return draw_rate(rate_counts(df, freq), freq, connections(df).values(), top=top)


def draw_rate(counts: pd.DataFrame, freq: str, tracks: Iterable[Connections], *, top: int = TOP_TYPES) -> Plot:
    """The rate plot from aggregates: `counts` as `rate_counts` returns, connection `tracks` per recording."""
    fig = Plot(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Event rate by type")
    if counts.empty:
        return _empty(fig, ax, "no object events")
    totals = counts.sum().sort_values(ascending=False, kind="stable")
    keep = list(totals.index[:top])
    if len(totals) > top:
        counts = counts[keep].assign(other=counts.drop(columns=keep).sum(axis=1))
    when = _naive(counts.index.to_series())
    for col in counts.columns:
        ax.plot(when, counts[col].to_numpy(), drawstyle="steps-post", label=str(col))
    for track in tracks:
        for down, up in track.gaps:
            ax.axvspan(down, up, color="tab:red", alpha=0.15, label="_gap")  # type: ignore[arg-type]
        for at in track.reconnect_times:
            ax.axvline(at, color="tab:green", linestyle=":", label="_reconnect")  # type: ignore[arg-type]
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(f"events per {freq}")
    ax.legend(loc="upper left", fontsize="small", ncols=2)
    return fig


def plot_states(df: pd.DataFrame, type: str, id: str) -> Plot:
    """One object's `state` over time as a step line; transitioning versions in orange, errors in red,
    removal marked with a black x. Returns a `Plot` (a `Figure` that shows in Jupyter)."""
    fig = Plot(figsize=(10, 3), layout="constrained")
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
