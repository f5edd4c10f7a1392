"""A self-contained HTML report of recordings or an event frame: one file to attach to an issue or send to a colleague.

Plots are embedded as base64 PNG and there is no script or external link, so it opens anywhere offline.

The report is built from aggregates, one pass over the events in chunks (`Aggregates.add`): counts per
recording, kind, type and event name, events per time bucket, connection history per recording, the
field-change and type-conflict tallies. A recording given by path is streamed through
`rancherlab.recording.read_recording`, a chunk at a time, so memory does not grow with the file; what is held
is bounded by the world the recording describes (the latest version of each live object, to count
"objects now" and field changes, and the catalog's fields), not by how many events it has. The one object's
state plot takes a second pass that keeps only that object's events.
"""

from __future__ import annotations

import base64
import html
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import _version
from ..protocol.event import ANOMALY, CONNECTED, DISCONNECTED, RESYNC_FINISHED, RESYNC_STARTED, Event
from ..recording import RecordingFormatError, RecordingWarning, read_recording
from ._diffs import delivering_stream, diffs
from ._flatten import is_conflict
from ._frame import frame
from ._load import Skipped, recording_name, recording_paths
from ._plots import Connections, Plot, draw_rate, plot_states
from ._schema import event_names, schema
from ._state import object_rows, state

_STYLE: Final = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} img{max-width:100%} code{font-size:.9em}
"""
MAX_ROWS: Final = 30
# A chunk of a streamed recording ends after CHUNK_EVENTS events or CHUNK_BYTES of frame text, whichever comes
# first; it is extended (up to CHUNK_CAP events) so that no resync window is cut in two, because the state fold
# needs a whole window to drop what was deleted meanwhile.
CHUNK_EVENTS: Final = 5_000
CHUNK_BYTES: Final = 4 * 1024 * 1024
CHUNK_CAP: Final = 200_000
# Rate buckets: the finest step (seconds) that keeps at most MAX_BUCKETS buckets; steps coarsen along this ladder.
_STEPS: Final = ((1, "1s"), (10, "10s"), (60, "1min"), (600, "10min"), (3600, "1h"), (86400, "1D"))
MAX_BUCKETS: Final = 4_000

PathLike = str | os.PathLike[str]
Chunks = Callable[[], Iterator[tuple[str, pd.DataFrame]]]
Key = tuple[str, str]


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


@dataclass
class _Recording:
    events: int = 0
    types: set[str] = field(default_factory=set)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    track: Connections = field(default_factory=Connections)


@dataclass
class Aggregates:
    """Everything the report shows, accumulated chunk by chunk (`add`), each chunk an event frame of one recording.

    Per recording: events, connections (one per `connected` marker), reconnects and disconnects, types, time span.
    Over all: events per (dialect, kind), per (dialect, type, name), per object type, markers by name, the
    first anomalies, object events per time bucket and type, field changes per (type, path) (as `diffs`
    counts them), the live objects at the end (as `state` folds them), and the catalog's type conflicts
    and late keys (as `schema` flags them).
    """

    recordings: dict[str, _Recording] = field(default_factory=dict)
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)
    names: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    markers: Counter[str] = field(default_factory=Counter)
    anomalies: list[tuple[str, Any, str]] = field(default_factory=list)
    anomaly_count: int = 0
    step: int = _STEPS[0][0]
    rate: Counter[tuple[int, str]] = field(default_factory=Counter)
    changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    field_types: dict[tuple[str, str, str], Counter[str]] = field(default_factory=dict)
    first_paths: dict[Key, set[str]] = field(default_factory=dict)
    state_changes: dict[Key, set[Any]] = field(default_factory=dict)
    # the carried folds: the latest row of each live object (state), the last row per delivering stream (diffs)
    _state: pd.DataFrame | None = None
    _diff: pd.DataFrame | None = None

    def add(self, recording: str, df: pd.DataFrame) -> None:
        """Account one chunk (an event frame, in recording order) of `recording`."""
        rec = self.recordings.setdefault(recording, _Recording())
        if df.empty:
            return
        rec.events += len(df)
        times = df["time"].dropna()
        if not times.empty:
            lo, hi = times.min(), times.max()
            rec.first = lo if rec.first is None else min(rec.first, lo)
            rec.last = hi if rec.last is None else max(rec.last, hi)
        kind = df["kind"].astype(object)
        self.kinds.update(zip(df["dialect"].astype(object), kind))
        objs = object_rows(df)
        rows = df[objs]
        typ = rows["type"].astype(str)
        rec.types.update(typ.unique().tolist())
        self.types.update(typ.tolist())
        names = event_names(df)
        for dialect, t, n, count in zip(*(names[c].tolist() for c in ("dialect", "type", "name", "count"))):
            self.names[(str(dialect), str(t), str(n))] += int(count)
        marks = df[(kind == "marker").to_numpy(dtype=bool)]
        self.markers.update(marks["name"].astype(str).tolist())
        naive = marks["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        for n, when, seq, info in zip(marks["name"].astype(str), naive, marks["seq"], marks["info"]):
            if n in (CONNECTED, DISCONNECTED):
                rec.track.see(n, when)
            elif n == ANOMALY:
                self.anomaly_count += 1
                if len(self.anomalies) < MAX_ROWS:
                    self.anomalies.append((recording, seq, str((info or {}).get("error", ""))))
        self._add_rate(rows)
        for key, st in zip(zip(typ, rows["id"].astype(str)), rows["state"].astype(object)):
            if pd.notna(st):
                self.state_changes.setdefault(key, set()).add(st)
        self._add_schema(df)
        self._add_diffs(df)
        self._state = state(_concat(self._state, df))

    def finish(self, recording: str) -> None:
        """The recording ended: a gap still open lasts until its last event."""
        rec = self.recordings.get(recording)
        if rec is not None and rec.last is not None:
            rec.track.end(np.datetime64(rec.last.tz_convert("UTC").tz_localize(None), "us"))

    def _add_rate(self, rows: pd.DataFrame) -> None:
        timed = rows[rows["time"].notna().to_numpy(dtype=bool)]
        if timed.empty:
            return
        secs = timed["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[s]").astype("int64")
        buckets = pd.DataFrame({"b": secs // self.step * self.step, "type": timed["type"].astype(str).to_numpy()})
        for (b, t), n in buckets.groupby(["b", "type"]).size().items():
            self.rate[(int(b), str(t))] += int(n)
        while len({b for b, _ in self.rate}) > MAX_BUCKETS and self.step < _STEPS[-1][0]:
            self.step = next(s for s, _ in _STEPS if s > self.step)
            coarse: Counter[tuple[int, str]] = Counter()
            for (b, t), n in self.rate.items():
                coarse[(b // self.step * self.step, t)] += n
            self.rate = coarse

    def _add_schema(self, df: pd.DataFrame) -> None:
        cat = schema(df)
        new_types = set()
        for dialect, t, path, types, late in zip(
            *(cat[c].tolist() for c in ("dialect", "type", "path", "types", "late"))
        ):
            key = (str(dialect), str(t))
            if key not in self.first_paths:
                new_types.add(key)
            if key in new_types and not late:
                self.first_paths.setdefault(key, set()).add(str(path))
            self.field_types.setdefault((*key, str(path)), Counter()).update(types)
        for key in new_types:
            self.first_paths.setdefault(key, set())

    def _add_diffs(self, df: pd.DataFrame) -> None:
        """Field changes of this chunk against the carried last versions; then carry this chunk's last versions."""
        both = _concat(self._diff, df)
        d = diffs(both)
        if not d.empty:
            d = d[(d["seq"] >= 0).fillna(True).to_numpy(dtype=bool)]  # carried rows have negative seq
            self.changes.update(zip(d["type"].astype(str), d["path"].astype(str)))
        # what `diffs` keeps between versions: per object the last row from each delivering stream, last one last
        last: dict[Key, dict[str | None, int]] = {}
        rows = both[object_rows(both)]
        positions = np.flatnonzero(object_rows(both))
        for pos, t, oid, n, obj in zip(positions, rows["type"], rows["id"], rows["name"], rows["object"]):
            if not isinstance(obj, dict):
                continue
            key = (t, oid)
            if n == "resource.remove":
                last.pop(key, None)
                continue
            streams = last.setdefault(key, {})
            stream = delivering_stream(obj)
            streams.pop(stream, None)
            streams[stream] = int(pos)
        keep = [p for streams in last.values() for p in streams.values()]
        carried = both.iloc[keep].copy()
        carried["seq"] = pd.array(-np.arange(1, len(carried) + 1), dtype="Int64")
        self._diff = carried

    # --- views ---------------------------------------------------------------------------------------

    @property
    def objects_now(self) -> int:
        return 0 if self._state is None else len(self._state)

    def freq(self) -> tuple[int, str]:
        """The rate plot's bucket (seconds, pandas frequency): the span's readable step, never finer than held."""
        buckets = sorted({b for b, _ in self.rate})
        span = buckets[-1] - buckets[0] if buckets else 0
        want = 1 if span <= 120 else 10 if span <= 1200 else 60 if span <= 7200 else 600 if span <= 86400 else 3600
        step = max(want, self.step)
        return step, dict(_STEPS)[step]

    def rate_counts(self) -> pd.DataFrame:
        if not self.rate:
            return pd.DataFrame()
        step, _ = self.freq()
        counts: Counter[tuple[int, str]] = Counter()
        for (b, t), n in self.rate.items():
            counts[(b // step * step, t)] += n
        s = pd.Series(counts)
        s.index = s.index.set_names(["time", "type"])
        table = s.unstack(fill_value=0).sort_index()
        full = range(int(table.index.min()), int(table.index.max()) + step, step)
        table = table.reindex(full, fill_value=0)
        table.index = pd.to_datetime(np.asarray(table.index, dtype="int64"), unit="s", utc=True)
        return table

    def summary(self) -> pd.DataFrame:
        """One row per recording (and a total row when there are several)."""
        rows = []
        for name, r in self.recordings.items():
            rows.append(_summary_row(name, r.events, r.track, len(r.types), r.first, r.last))
        if len(self.recordings) > 1:
            total = Connections()
            total.connections = sum(r.track.connections for r in self.recordings.values())
            total.disconnects = sum(r.track.disconnects for r in self.recordings.values())
            firsts = [r.first for r in self.recordings.values() if r.first is not None]
            lasts = [r.last for r in self.recordings.values() if r.last is not None]
            rows.append(
                _summary_row(
                    f"all {len(self.recordings)} recordings",
                    sum(r.events for r in self.recordings.values()),
                    total,
                    len(self.types),
                    min(firsts) if firsts else None,
                    max(lasts) if lasts else None,
                )
            )
            # reconnects of the total are the recordings' own: a recording's first connection is not a reconnect
            rows[-1]["reconnects"] = sum(r.track.reconnects for r in self.recordings.values())
        out = pd.DataFrame(rows)
        out.insert(len(out.columns) - 1, "objects now", [""] * (len(out) - 1) + [self.objects_now])
        return out

    def flagged(self) -> pd.DataFrame:
        rows = []
        for (dialect, t, path), types in sorted(self.field_types.items()):
            conflict = is_conflict(types.keys())
            late = path not in self.first_paths.get((dialect, t), set())
            if conflict or late:
                rows.append((dialect, t, path, dict(sorted(types.items())), conflict, late))
        return pd.DataFrame(rows, columns=["dialect", "type", "path", "types", "conflict", "late"])

    def busiest_object(self) -> Key | None:
        """The object with the most distinct states: the one whose state plot says the most."""
        if not self.state_changes:
            return None
        return max(sorted(self.state_changes), key=lambda k: len(self.state_changes[k]))


def _summary_row(
    name: str, events: int, track: Connections, types: int, first: pd.Timestamp | None, last: pd.Timestamp | None
) -> dict[str, Any]:
    return {
        "recording": name,
        "events": events,
        "connections": track.connections,
        "reconnects": track.reconnects,
        "disconnects": track.disconnects,
        "types": types,
        "time span (UTC)": f"{first} → {last}" if first is not None else "no timestamps",
    }


def _concat(carried: pd.DataFrame | None, df: pd.DataFrame) -> pd.DataFrame:
    if carried is None or carried.empty:
        return df.reset_index(drop=True)
    cols = [c for c in df.columns if c in carried.columns]
    # categoricals with other categories become plain object columns: the folds compare values, not codes
    return pd.concat([carried[cols], df[cols]], ignore_index=True)


def aggregate(chunks: Iterable[tuple[str, pd.DataFrame]]) -> Aggregates:
    """`Aggregates` of (recording, event frame) chunks; a recording's chunks come together, in order."""
    agg = Aggregates()
    current: str | None = None
    for name, df in chunks:
        if current is not None and name != current:
            agg.finish(current)
        current = name
        agg.add(name, df)
    if current is not None:
        agg.finish(current)
    return agg


def sections(agg: Aggregates, object_frame: Callable[[Key], pd.DataFrame]) -> list[tuple[str, str]]:
    """(heading, HTML) pairs of the report body; `object_frame` gives the events of one object."""
    out: list[tuple[str, str]] = [("Summary", _table(agg.summary()))]
    _, freq = agg.freq()
    tracks = [r.track for r in agg.recordings.values()]
    out.append(("Event rate", figure_png(draw_rate(agg.rate_counts(), freq, tracks))))
    kinds = pd.DataFrame([(d, k, n) for (d, k), n in sorted(agg.kinds.items())], columns=["dialect", "kind", "events"])
    out.append(("Events by kind", _table(kinds)))
    names = pd.DataFrame(
        [(d, t, n, c) for (d, t, n), c in agg.names.items()], columns=["dialect", "type", "name", "count"]
    ).sort_values("count", ascending=False, kind="stable")
    out.append(("Object events by type and name", _table(names)))
    out.append(("Objects per type", figure_png(_type_bars(agg.types))))
    marks = pd.DataFrame(sorted(agg.markers.items()), columns=["name", "count"])
    out.append(("Lifecycle markers", _table(marks)))
    if agg.anomaly_count:
        errs = pd.DataFrame(agg.anomalies, columns=["recording", "seq", "error"])
        if len(agg.recordings) == 1:
            errs = errs.drop(columns="recording")
        more = agg.anomaly_count - len(errs)
        out.append(("Anomalies", _table(errs) + (f"<p><em>{more} more not shown</em></p>" if more > 0 else "")))
    if agg.changes:
        top = pd.DataFrame(
            [(t, p, n) for (t, p), n in agg.changes.items()], columns=["type", "path", "changes"]
        ).sort_values("changes", ascending=False, kind="stable")
        out.append(("Most changed fields", _table(top)))
    busiest = agg.busiest_object()
    if busiest is not None:
        out.append((f"States of {busiest[0]} {busiest[1]}", figure_png(plot_states(object_frame(busiest), *busiest))))
    if agg.field_types:
        out.append(("Type conflicts and late keys", _table(agg.flagged())))
    return out


def _type_bars(counts: Counter[str]) -> Plot:
    fig = Plot(figsize=(10, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Object events per type")
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    if not top:
        ax.text(0.5, 0.5, "no object events", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.barh([t for t, _ in top][::-1], [n for _, n in top][::-1])
        ax.set_xlabel("events")
    return fig


def _frame_chunks(df: pd.DataFrame, name: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """A frame in memory: one chunk per recording (by its `recording` column, else all as `name`), in order."""
    if "recording" not in df.columns or df.empty:
        yield name, df
        return
    recs = df["recording"].astype(object)
    for rec in dict.fromkeys(recs.tolist()):
        yield str(rec), df[(recs == rec).to_numpy(dtype=bool)]


def _recordings(paths: list[Path], *, strict: bool, skipped: Skipped) -> Iterator[tuple[str, Iterator[Event]]]:
    """Each readable recording's name and events; tolerant reading counts what it left out in `skipped`."""
    for path in paths:
        try:
            rec = read_recording(path, strict=strict)
        except RecordingFormatError as exc:  # empty, not a recording, a newer format version
            if strict:
                raise
            skipped.file(path.name, str(exc))
            continue
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", RecordingWarning)  # counted in `skipped`, said once by the caller
            yield recording_name(path), iter(rec)
        if rec.skipped:
            skipped.lines += rec.skipped
            first = next((str(w.message).partition("; first: ")[2] for w in said), "")
            skipped.first = skipped.first or f"{path.name}: {first}"
    if paths and len(skipped.files) == len(paths):
        raise RecordingFormatError(skipped.files[0][1])


def _file_chunks(paths: list[Path], *, strict: bool, skipped: Skipped) -> Iterator[tuple[str, pd.DataFrame]]:
    """Recordings on disk, streamed: chunks of about `CHUNK_EVENTS` events, never cutting a resync window."""
    for name, events in _recordings(paths, strict=strict, skipped=skipped):
        batch: list[Event] = []
        size = 0
        open_resyncs: set[int] = set()
        for event in events:
            if event.is_ping:
                continue
            batch.append(event)
            size += len(event.raw or "")
            if event.kind == "marker" and event.name == RESYNC_STARTED:
                open_resyncs.add(event.conn)
            elif event.kind == "marker" and event.name in (RESYNC_FINISHED, DISCONNECTED):
                open_resyncs.discard(event.conn)
            if (len(batch) >= CHUNK_EVENTS or size >= CHUNK_BYTES) and (not open_resyncs or len(batch) >= CHUNK_CAP):
                yield name, frame(batch)
                batch, size = [], 0
        yield name, frame(batch)


def _object_events(paths: list[Path], key: Key, *, strict: bool) -> pd.DataFrame:
    """The events of one object from recordings on disk (a second streamed pass that keeps only those)."""
    typ, oid = key
    again = Skipped()  # the first pass already counted what is unreadable
    return frame(
        e
        for _, events in _recordings(paths, strict=strict, skipped=again)
        for e in events
        if e.is_resource and e.type == typ and e.id == oid
    )


def write_report(
    data: pd.DataFrame | PathLike | Iterable[PathLike],
    out: str | Path,
    *,
    title: str | None = None,
    sources: Sequence[str] = (),
    strict: bool = True,
    skipped: Skipped | None = None,
) -> Path:
    """Write the HTML report of `data` to `out`; returns the path.

    `data` is an event frame (as `load` or `frame` return; with a `recording` column, counts are per
    recording) or recordings on disk (a file, a folder, or several), which are streamed: memory does not
    grow with their size. The summary gives per recording the events, connections (sockets opened, one
    `connected` marker each), reconnects (connections after a recording's first), disconnects and time span,
    plus a total row for several recordings; the rate plot shades gaps and marks reconnects per recording, so
    the start of another recording is not a reconnect. `strict=False` skips unreadable lines and files of
    recordings and counts them in `skipped` (without it, one `RecordingWarning` says what was skipped). Raises `FileNotFoundError` for a missing recording, `RecordingError` for one
    that cannot be read. The default `title` names the recording (or how many there are).
    """
    if isinstance(data, pd.DataFrame):
        df = data
        agg = aggregate(_frame_chunks(df, sources[0] if len(sources) == 1 else "events"))

        def object_frame(key: Key) -> pd.DataFrame:
            return df

    else:
        paths = recording_paths(data)
        report = Skipped() if skipped is None else skipped
        agg = aggregate(_file_chunks(paths, strict=strict, skipped=report))
        if skipped is None and report:
            warnings.warn(report.message(), RecordingWarning, stacklevel=2)

        def object_frame(key: Key) -> pd.DataFrame:
            return _object_events(paths, key, strict=strict)

        names = list(dict.fromkeys(recording_name(p) for p in paths))
        sources = sources or names
        if title is None:
            title = "rancherlab report: " + (names[0] if len(names) == 1 else f"{len(names)} recordings")
    title = title or "rancherlab report"
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections(agg, object_frame))
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
