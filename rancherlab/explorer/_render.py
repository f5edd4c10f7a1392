"""HTML for the Explorer's panel: pure functions from what the tally holds to strings (no widgets here)."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from ..capture import CaptureStats
from ..protocol.event import Event
from ._tally import Link

MAX_SHOWN_CHARS: Final = 20_000  # of one object's JSON or one raw frame
_WIRE: Final = ("frame", "sent")
_OBJECTS: Final = ("snapshot", "resync")
_STYLE_ERR: Final = "color:#b00020"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def clock(ts: datetime | None) -> str:
    if ts is None:
        return "–"
    return ts.astimezone(UTC).strftime("%H:%M:%S") + f".{ts.microsecond // 1000:03d}"


def error_html(text: str) -> str:
    return f"<div style='{_STYLE_ERR};white-space:pre-wrap'>&#9888; {esc(text)}</div>"


def info_html(text: str) -> str:
    return f"<div style='white-space:pre-wrap'>{esc(text)}</div>"


def link_line(link: Link, stats: CaptureStats | None, running: bool, retry_cap: float | None) -> str:
    """'connected since T' / 'down since T, retry in S s, last close 1006', with reconnects and gap time."""
    parts: list[str] = []
    if not running:
        state = stats.state if stats else "not connected"
        parts.append(f"<b>{esc(state)}</b>")
    elif link.connected:
        parts.append(f"<b style='color:#1b7f3b'>connected</b> since {clock(link.since)}")
    elif link.since is None:
        parts.append("<b>connecting…</b>")
    else:
        down = time.monotonic() - (link.down_mono or time.monotonic())
        retry = ""
        if retry_cap is not None:
            left = retry_cap - down
            retry = f", retry in ≤{left:.0f} s" if left > 0.5 else ", reconnecting…"
        parts.append(f"<b style='{_STYLE_ERR}'>down</b> since {clock(link.since)} ({down:.0f} s){retry}")
    if link.last_code is not None or link.disconnects:
        reason = f" {esc(link.last_reason)}" if link.last_reason else ""
        parts.append(f"last close {esc(link.last_code if link.last_code is not None else 'no code')}{reason}")
    reconnects = max(0, link.connections - 1)
    parts.append(f"{reconnects} reconnect{'s' if reconnects != 1 else ''}")
    if stats is not None and stats.gap_seconds:
        parts.append(f"gaps {stats.gap_seconds:.1f} s")
    return " · ".join(parts)


def timeline(link: Link, width: int = 320, height: int = 12) -> str:
    """Connections as green bars and gaps as red ones, oldest at the left, now at the right edge."""
    if not link.segments:
        return ""
    now = datetime.now(UTC)
    start = link.segments[0].opened
    span = max((now - start).total_seconds(), 1e-3)

    def x(ts: datetime) -> float:
        return width * (ts - start).total_seconds() / span

    rects = [f"<rect x='0' y='0' width='{width}' height='{height}' fill='#f3c7c7'/>"]
    for seg in link.segments:
        x0, x1 = x(seg.opened), x(seg.closed or now)
        rects.append(
            f"<rect x='{x0:.1f}' y='0' width='{max(x1 - x0, 1):.1f}' height='{height}' fill='#4caf50'>"
            f"<title>connection {seg.conn}: {clock(seg.opened)}–{clock(seg.closed)}"
            f"{' close ' + esc(seg.code) if seg.code is not None else ''}</title></rect>"
        )
    return (
        f"<svg width='{width}' height='{height}' style='vertical-align:middle' "
        f"aria-label='connections and gaps'>{''.join(rects)}</svg>"
    )


def counts_table(counts: Iterable[tuple[tuple[str, str, str], int]]) -> str:
    """Counts by (kind, name, type): wire frames apart from REST snapshot/resync objects and markers."""
    sections: dict[str, list[str]] = {"wire frames": [], "REST snapshot / resync objects": [], "markers": []}
    for (kind, name, typ), n in counts:
        section = (
            "wire frames" if kind in _WIRE else "REST snapshot / resync objects" if kind in _OBJECTS else "markers"
        )
        shown_kind = "" if kind == "frame" else kind
        sections[section].append(
            f"<tr><td>{esc(shown_kind)}</td><td>{esc(name)}</td><td>{esc(typ)}</td>"
            f"<td style='text-align:right' class='rl-count'>{n}</td></tr>"
        )
    body = []
    for title, rows in sections.items():
        if rows:
            body.append(f"<tr><th colspan='4' style='text-align:left'>{esc(title)}</th></tr>{''.join(rows)}")
    if not body:
        return "<i>no events yet</i>"
    return (
        "<table class='rl-counts'><tr><th>kind</th><th>name</th><th>type</th><th>count</th></tr>"
        + "".join(body)
        + "</table>"
    )


def event_label(e: Event) -> str:
    """One line of the last-events list: time, name, type, id, revision."""
    name = e.name if e.kind == "frame" else f"{e.kind} {e.name}"
    rev = f"  rev {e.revision}" if e.revision else ""
    return f"{clock(e.ts)}  #{e.seq}  {name}  {e.type or ''}  {e.id or ''}{rev}"


def _pre(text: str) -> str:
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + f"\n… ({len(text) - MAX_SHOWN_CHARS} more characters)"
    return (
        "<pre style='max-height:24em;overflow:auto;font-size:11px;margin:0;white-space:pre-wrap;"
        f"overflow-wrap:anywhere'>{esc(text)}</pre>"
    )


def event_detail(e: Event) -> tuple[str, str]:
    """(the event's object as formatted JSON, its raw frame) as HTML; both were redacted on arrival."""
    if e.data is not None:
        obj = json.dumps(e.data, indent=2, sort_keys=False, ensure_ascii=False, default=str)
    elif e.info:
        obj = json.dumps(dict(e.info), indent=2, ensure_ascii=False, default=str)
    else:
        obj = "(no object)"
    head = f"<div class='rl-event-head'><b>{esc(e.name)}</b> {esc(e.type or '')} {esc(e.id or '')}</div>"
    raw = e.raw if e.raw is not None else "(no raw frame: this event was not received as a frame)"
    return head + "<div class='rl-event-json'>" + _pre(obj) + "</div>", "<div class='rl-event-raw'>" + _pre(
        raw
    ) + "</div>"


def schema_table(rows: list[dict[str, Any]], objects: int) -> str:
    """Field catalog rows of one type (see `FieldCatalog.rows`)."""
    if not rows:
        return "<i>no objects of this type yet</i>"
    lines = []
    for r in rows:
        types = ", ".join(f"{esc(t)}×{n}" for t, n in r["types"].items())
        flags = ("<b style='" + _STYLE_ERR + "'>conflict</b> " if r["conflict"] else "") + ("late" if r["late"] else "")
        lines.append(
            f"<tr><td><code>{esc(r['path'])}</code></td><td>{types}</td><td style='text-align:right'>"
            f"{r['presence']:.0f}%</td><td style='text-align:right'>{r['nulls']:.0f}%</td>"
            f"<td><code>{esc(' | '.join(r['examples']))}</code></td><td>{flags}</td></tr>"
        )
    return (
        f"<div>{objects} object version(s), {len(rows)} field path(s)</div>"
        "<div style='max-height:30em;overflow:auto'><table class='rl-schema'><tr><th>path</th><th>JSON types</th>"
        "<th>presence</th><th>null</th><th>examples</th><th></th></tr>" + "".join(lines) + "</table></div>"
    )


def versions_table(versions: list[Event]) -> str:
    if not versions:
        return "<i>pick an object</i>"
    rows = "".join(
        f"<tr><td>#{e.seq}</td><td>{clock(e.ts)}</td><td>{esc(e.kind if e.kind != 'frame' else e.name)}</td>"
        f"<td>{esc(e.revision or '')}</td></tr>"
        for e in versions
    )
    return "<table><tr><th>seq</th><th>time</th><th>event</th><th>revision</th></tr>" + rows + "</table>"


def changes_table(records: list[dict[str, Any]]) -> str:
    if not records:
        return "<i>no field changed between the versions kept</i>"
    rows = "".join(
        f"<tr><td>#{r['seq']}</td><td><code>{esc(r['path'])}</code></td><td>{esc(r['change'])}</td>"
        f"<td><code>{esc(_short(r['old']))}</code></td><td><code>{esc(_short(r['new']))}</code></td></tr>"
        for r in records
    )
    return (
        "<div style='max-height:30em;overflow:auto'><table><tr><th>seq</th><th>path</th><th>change</th><th>old</th>"
        "<th>new</th></tr>" + rows + "</table></div>"
    )


def _short(value: Any, limit: int = 80) -> str:
    if value is None:
        return ""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "changes_table",
    "counts_table",
    "error_html",
    "event_detail",
    "event_label",
    "info_html",
    "link_line",
    "schema_table",
    "timeline",
    "versions_table",
]
