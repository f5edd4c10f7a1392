"""Recordings: one subscription stream as versioned, append-only JSON lines (optionally gzip).

Line 1 is a header, then one line per `Event`, then an optional ``{"summary": ...}`` line written on a
clean close. Frames and sent messages are stored as their raw text only and rebuilt with the protocol
parser on reading, so a replayed event equals the live one and the recording stays byte-faithful.
The format is specified in docs/recording-format.md (JSON Schema: docs/recording.schema.json).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import sys
import threading
import types
import warnings
import weakref
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, NamedTuple, Self, TypeGuard
from urllib.parse import unquote, urlsplit, urlunsplit

import msgspec

from ._version import __version__
from .errors import RancherlabError, ScopeError, UsageError
from .protocol._json import dumps as _dumps
from .protocol._json import loads as _loads
from .protocol.event import DEFAULT_MAX_FRAME_BYTES, DIALECTS, FROM_RAW, KINDS, RESOURCE_EVENTS, Dialect, Event
from .protocol.frames import parse_frame, parse_sent
from .protocol.objects import object_summary
from .redaction import Redactor
from .scope import CREDENTIAL_PARAMS, SCOPE_HELP, parse_server_url

FORMAT: Final = "rancherlab-recording"
VERSION: Final = 1
HEADER_LIMIT: Final = 1024 * 1024  # bytes; a header is a few hundred
FLUSH_INTERVAL: Final = 1.0  # seconds: a killed writer loses at most this much
_CHUNK: Final = 256 * 1024
_BLOCK_CHUNK: Final = 1024 * 1024  # `_LineReader.blocks` reads this much at once (the CPU cache holds it)
_GZIP_MAGIC: Final = b"\x1f\x8b"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SCHEMES: Final = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
# Query parameters never written to a header: the dashboard's socket counter, and anything credential-like.
_DROP_PARAMS: Final = frozenset({"sockid", *CREDENTIAL_PARAMS})
_PART_NAME: Final = re.compile(r"\A(?P<base>.+?)(?:\.(?P<part>\d+))?(?P<suffix>\.jsonl(?:\.gz)?)\Z")


# --- errors -----------------------------------------------------------------------------------------


class RecordingError(RancherlabError):
    """Anything wrong with a recording file. Messages name the file and line, never the content."""


class RecordingExistsError(RecordingError, FileExistsError):
    """The target recording exists and `overwrite=True` was not given."""


class RecordingFormatError(RecordingError):
    """Not a rancherlab recording, or its header is unusable."""


class RecordingVersionError(RecordingFormatError):
    """Written in a newer format version than this rancherlab reads."""


class RecordingCorruptError(RecordingError):
    """A line that is not a valid event (strict mode)."""

    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}, line {line}: {reason}")


class RecordingTruncatedError(RecordingCorruptError):
    """The file ends in the middle of a line or of its gzip stream: the writer was killed, or the copy is partial.

    Every event before the cut has already been yielded when this is raised.
    """


class LineTooLongError(RecordingCorruptError):
    """A line longer than the recording's limit; it was skipped over without being read into memory."""


class NoRecordingsError(RecordingError, FileNotFoundError):
    """A folder holds no recording files, or a named recording does not exist (also a FileNotFoundError)."""


class MixedRecordingsError(RecordingError):
    """A folder holds recordings of different streams (dialects or scopes), which cannot be read as one stream.

    `files` maps each file name to its ``(dialect, scope)``.
    """

    def __init__(self, root: Path | str, files: Mapping[str, tuple[str, str]]) -> None:
        self.root = str(root)
        self.files = dict(files)
        listed = "; ".join(f"{name} ({d} {s})" for name, (d, s) in self.files.items())
        super().__init__(
            f"{self.root} mixes recordings of different streams: {listed}. A folder read as one stream must hold "
            "one recording (and its rotation parts). Name one file, or use rl.load(folder), which reads each "
            "file as its own recording with its dialect and scope."
        )


class RecordingWarning(UserWarning):
    """Tolerant reading skipped lines; one warning per pass says how many and where the first was."""


# --- header -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingHeader:
    """Line 1 of a recording: what stream this is, where it came from, and what was redacted.

    `server` and `endpoint` accept full URLs; they are cut down to ``scheme://host:port`` and
    ``path?query`` with user info, ``sockId`` and credential-like query parameters removed.
    `redaction` takes a `Redactor` (its policy is recorded) or a policy mapping.
    """

    dialect: Dialect
    scope: str
    server: str
    endpoint: str
    redaction: Mapping[str, Any] | Redactor
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    server_version: str | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    synthetic: bool = False
    note: str | None = None
    part: int = 0
    # True when the event lines of frames carry the fields the frame rule reads from `raw` (RecordingWriter's).
    frame_fields: bool = False
    rancherlab: str = __version__
    # Header keys a newer minor writer added; kept so that rewriting a recording does not drop them.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise UsageError(f"unknown dialect {self.dialect!r}: use 'norman' (/v3) or 'steve' (/v1)")
        if not isinstance(self.scope, str) or not self.scope:
            raise UsageError("a recording needs a scope, e.g. 'project:c-abc12:p-xyz34' or 'steve:c-abc12'")
        redaction = self.redaction
        if isinstance(redaction, Redactor):
            object.__setattr__(self, "server", redaction.redact_text(self.server))
            object.__setattr__(self, "endpoint", redaction.redact_text(self.endpoint))
            redaction = redaction.policy
        object.__setattr__(self, "redaction", dict(redaction))
        object.__setattr__(self, "server", server_origin(self.server))
        object.__setattr__(self, "endpoint", clean_endpoint(self.endpoint))
        started = self.started
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        object.__setattr__(self, "started", started.astimezone(UTC))
        if (
            not isinstance(self.max_frame_bytes, int)
            or isinstance(self.max_frame_bytes, bool)
            or self.max_frame_bytes <= 0
        ):
            raise UsageError("max_frame_bytes must be a positive number of bytes")

    @classmethod
    def from_url(cls, url: str, *, redaction: Mapping[str, Any] | Redactor, **fields: Any) -> RecordingHeader:
        """A header for the subscribe socket at `url` (dialect, scope, server and endpoint from the URL)."""
        dialect, scope = subscribe_scope(url)
        return cls(dialect, scope, url, url, redaction, **fields)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "rancherlab": self.rancherlab,
            "dialect": self.dialect,
            "scope": self.scope,
            "server": self.server,
            "endpoint": self.endpoint,
        }
        if self.server_version is not None:
            out["server_version"] = self.server_version
        out["started"] = _iso(self.started)
        out["redaction"] = dict(self.redaction)  # type: ignore[arg-type]
        out["max_frame_bytes"] = self.max_frame_bytes
        if self.synthetic:
            out["synthetic"] = True
        if self.note is not None:
            out["note"] = self.note
        if self.part:
            out["part"] = self.part
        if self.frame_fields:
            out["frame_fields"] = True
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_json(cls, doc: Any, where: str = "recording") -> RecordingHeader:
        """Validate a parsed header line; raises `RecordingFormatError` / `RecordingVersionError`."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise RecordingFormatError(
                f"{where} is not a rancherlab recording: its first line should be a header with "
                f'"format": "{FORMAT}"' + (f" (found format {found[:40]!r})" if isinstance(found, str) else "")
            )
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RecordingFormatError(f'{where}: the header has no valid format "version" (a positive integer)')
        if version > VERSION:
            writer = doc.get("rancherlab")
            by = f"rancherlab {writer}" if isinstance(writer, str) and len(writer) < 40 else "a newer rancherlab"
            need = f"'rancherlab>={writer}'" if isinstance(writer, str) and len(writer) < 40 else "rancherlab"
            raise RecordingVersionError(
                f"{where} uses recording format version {version}, written by {by}; this rancherlab "
                f"{__version__} reads version {VERSION}. Upgrade with: pip install -U {need} "
                "(or read it with that version and migrate as docs/recording-format.md describes)."
            )
        problems = []
        if doc.get("dialect") not in DIALECTS:
            problems.append("dialect must be 'norman' or 'steve'")
        for name in ("scope", "server", "endpoint", "rancherlab", "started"):
            if not isinstance(doc.get(name), str):
                problems.append(f"{name} must be a string")
        if not isinstance(doc.get("redaction"), dict):
            problems.append("redaction must be an object")
        mfb = doc.get("max_frame_bytes")
        if not isinstance(mfb, int) or isinstance(mfb, bool) or mfb <= 0:
            problems.append("max_frame_bytes must be a positive integer")
        for name, kind in (
            ("server_version", str),
            ("note", str),
            ("synthetic", bool),
            ("part", int),
            ("frame_fields", bool),
        ):
            if doc.get(name) is not None and not isinstance(doc[name], kind):
                problems.append(f"{name} must be a {kind.__name__}")
        started = None
        if isinstance(doc.get("started"), str):
            try:
                started = datetime.fromisoformat(doc["started"])
            except ValueError:
                problems.append("started must be an ISO 8601 time")
        if problems:
            raise RecordingFormatError(f"{where}: bad header: {'; '.join(problems)}")
        known = {
            "format",
            "version",
            "rancherlab",
            "dialect",
            "scope",
            "server",
            "endpoint",
            "server_version",
            "started",
            "redaction",
            "max_frame_bytes",
            "synthetic",
            "note",
            "part",
            "frame_fields",
        }
        try:
            return cls(
                doc["dialect"],
                doc["scope"],
                doc["server"],
                doc["endpoint"],
                doc["redaction"],
                started=started,  # type: ignore[arg-type]
                server_version=doc.get("server_version"),
                max_frame_bytes=mfb,  # type: ignore[arg-type]
                synthetic=bool(doc.get("synthetic", False)),
                note=doc.get("note"),
                part=int(doc.get("part") or 0),
                frame_fields=bool(doc.get("frame_fields", False)),
                rancherlab=doc["rancherlab"],
                extra={k: v for k, v in doc.items() if k not in known},
            )
        except (ValueError, OverflowError) as exc:
            raise RecordingFormatError(f"{where}: bad header: {exc}") from None


def subscribe_scope(url: str) -> tuple[Dialect, str]:
    """(dialect, canonical scope string) of a Rancher subscribe URL, e.g. ``("norman", "project:c-abc12:p-xyz34")``.

    Raises `ScopeError` (a ValueError) for a URL that is not a subscribe endpoint.
    """
    parts = urlsplit(url if "://" in url else f"https://rancher{url if url.startswith('/') else '/' + url}")
    # Browsers may percent-encode the ':' of a project id.
    scope = parse_server_url(urlunsplit(parts._replace(path=unquote(parts.path), query="", fragment=""))).scope
    if scope is None:
        raise ScopeError(f"not a Rancher subscribe URL: {parts.path!r} ({SCOPE_HELP})")
    return scope.dialect, str(scope)


def server_origin(url: str) -> str:
    """``scheme://host:port`` of a URL, without credentials; ws(s) is named as the http(s) server it is."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    scheme = _SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def clean_endpoint(url: str) -> str:
    """Path and query of a URL as used, minus ``sockId`` and credential-like parameters (text kept as is)."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and unquote(p.split("=", 1)[0]).lower() not in _DROP_PARAMS]
    return (parts.path or "/") + (f"?{'&'.join(kept)}" if kept else "")


# --- event lines ------------------------------------------------------------------------------------


def encode_event(event: Event) -> bytes:
    """One event as its recording line (with the newline), as docs/recording-format.md describes.

    A frame keeps its raw text and the fields the frame rule read from it (type, id, revision, watch, info); a sent
    message keeps its raw text only; an object event (a resource frame, a snapshot or resync object) also carries
    its object's summary (`protocol.objects.object_summary`: state, transitioning, namespace, project), so readers
    that only need those never parse the object.
    """
    if event.kind not in KINDS:
        raise ValueError(f"unknown event kind {event.kind!r}")
    if not isinstance(event.t, (int, float)) or not math.isfinite(event.t):
        raise ValueError(f"event #{event.seq} has no finite time t")
    obj: dict[str, Any] = {
        "seq": event.seq,
        "t": event.t,
        "ts": _iso(event.ts) if event.ts else None,
        "conn": event.conn,
        "kind": event.kind,
        "name": event.name,
    }
    if event.kind in ("frame", "sent"):
        if not isinstance(event.raw, str):
            raise ValueError(f"{event.kind} event #{event.seq} has no raw text to record")
        if event.kind == "frame":
            _put_fields(obj, event)
            if event.name in RESOURCE_EVENTS:
                _put_summary(obj, event)
        obj["raw"] = event.raw
    else:
        for name in ("type", "id", "revision", "raw"):
            value = getattr(event, name)
            if value is not None:
                obj[name] = value
        if event.kind in ("snapshot", "resync"):
            _put_summary(obj, event)
        if event.data is not None:
            obj["data"] = event.data
        if event.watch is not None:
            obj["watch"] = dict(event.watch)
        if event.info:
            obj["info"] = dict(event.info)
    return _dumps(obj) + b"\n"


def _put_fields(obj: dict[str, Any], event: Event) -> None:
    for name, value in (("type", event.type), ("id", event.id), ("revision", event.revision)):
        if value is not None:
            obj[name] = value
    if event.watch:
        obj["watch"] = dict(event.watch)
    if event.info:
        obj["info"] = dict(event.info)


def _put_summary(obj: dict[str, Any], event: Event) -> None:
    state, transitioning, namespace, project = object_summary(event.dialect, event.data)
    if state is not None:
        obj["state"] = state
    if transitioning is not None:
        obj["transitioning"] = transitioning
    if namespace is not None:
        obj["namespace"] = namespace
    if project is not None:
        obj["project"] = project


def decode_event(obj: Any, dialect: Dialect, *, frame_fields: bool = False) -> Event:
    """Rebuild an `Event` from a parsed event line; raises ValueError saying what is wrong.

    `frame_fields` (the header's flag): a frame's fields are taken from the line and its `data` is read from `raw`
    when first asked for (`Event(data=FROM_RAW)`); otherwise the frame rule reads them all from `raw` now.
    """
    try:
        return _decode_event(obj, dialect, frame_fields)
    except OverflowError:
        raise ValueError("a number on the line is out of range") from None


class _FrameLine(msgspec.Struct):
    """A frame's event line in a file whose header says `frame_fields`, typed as `decode_event` checks it."""

    seq: int
    t: float
    ts: str | None  # read by datetime.fromisoformat, as in decode_event
    conn: int
    kind: Literal["frame"]
    name: str
    raw: str
    type: str | None = None
    id: str | None = None
    revision: str | None = None
    watch: dict[str, Any] | None = None
    info: dict[str, Any] | None = None


# Parses and type-checks a frame line in one C pass (msgspec): faster than parsing it into a dict and checking
# each field in Python. A line it refuses (any other kind, a bad value) is read by `decode_event`, which says why.
_decode_frame_line: Final = msgspec.json.Decoder(_FrameLine).decode
_FRAME_LINE_ERRORS: Final = (msgspec.ValidationError, msgspec.DecodeError)


def _indexed_frame(line: bytes, dialect: Dialect) -> Event | None:
    """The event of a frame line of a `frame_fields` file, or None when the line is anything else."""
    try:
        f = _decode_frame_line(line)
    except _FRAME_LINE_ERRORS:
        return None
    if not math.isfinite(f.t):
        return None
    try:
        ts = None if f.ts is None else datetime.fromisoformat(f.ts)
    except ValueError:
        return None
    return Event(f.seq, f.conn, f.t, ts, dialect, "frame", f.name, f.type, f.id, f.revision, f.raw, FROM_RAW, f.watch, f.info)  # fmt: skip


def _decode_event(obj: Any, dialect: Dialect, frame_fields: bool) -> Event:
    if not isinstance(obj, dict):
        raise ValueError("line is not a JSON object")  # noqa: TRY004 - decode_event documents ValueError
    get = obj.get
    seq, conn, t, ts, kind, name = get("seq"), get("conn"), get("t"), get("ts"), get("kind"), get("name")
    if not _is_int(seq) or not _is_int(conn):
        raise ValueError("seq and conn must be integers")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ValueError("t must be a finite number")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(name, str):
        raise ValueError("name must be a string")  # noqa: TRY004 - decode_event documents ValueError
    if ts is not None:
        if not isinstance(ts, str):
            raise ValueError("ts must be an ISO 8601 string or null")
        ts = datetime.fromisoformat(ts)
    if kind in ("frame", "sent"):
        raw = get("raw")
        if not isinstance(raw, str):
            raise ValueError(f"a {kind} line needs its raw text")
        if frame_fields and kind == "frame":
            typ, oid, rev, watch, info = get("type"), get("id"), get("revision"), get("watch"), get("info")
            if not (_opt(typ, str) and _opt(oid, str) and _opt(rev, str) and _opt(watch, dict) and _opt(info, dict)):
                raise ValueError("type, id and revision must be strings, watch and info objects")
            return Event(seq, conn, float(t), ts, dialect, kind, name, typ, oid, rev, raw, FROM_RAW, watch, info)
        try:
            event = parse_frame(raw, dialect) if kind == "frame" else parse_sent(raw, dialect)
        except RecursionError:
            raise ValueError("raw text is nested too deeply") from None
        if event.kind != kind or event.name != name:
            raise ValueError(f"raw text does not parse to the recorded {kind} {name!r}")
        return event.stamped(seq=seq, conn=conn, t=float(t), ts=ts)
    fields: dict[str, Any] = {}
    for key in ("type", "id", "revision", "raw"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
        fields[key] = value
    watch, info = obj.get("watch"), obj.get("info", {})
    if watch is not None and not isinstance(watch, dict):
        raise ValueError("watch must be an object")
    if not isinstance(info, dict):
        raise ValueError("info must be an object")  # noqa: TRY004 - decode_event documents ValueError
    return Event(seq, conn, float(t), ts, dialect, kind, name, data=obj.get("data"), watch=watch, info=info, **fields)


# --- writer -----------------------------------------------------------------------------------------


class RecordingWriter:
    """Append-only writer: crash-safe (flushed at least once a second and after every batch).

    A ``.gz`` path is written as gzip with sync flushes, so a file cut anywhere still decompresses to
    complete lines. With `rotate_bytes`, ``name.jsonl`` continues in ``name.1.jsonl``, ``name.2.jsonl``
    … once a part holds that many (uncompressed) bytes; each part starts with its own header.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: RecordingHeader,
        *,
        overwrite: bool = False,
        rotate_bytes: int | None = None,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        if not isinstance(header, RecordingHeader):
            raise TypeError("header must be a RecordingHeader")
        if rotate_bytes is not None and rotate_bytes <= 0:
            raise UsageError("rotate_bytes must be a positive number of bytes")
        if not 0 < flush_interval <= FLUSH_INTERVAL:
            raise UsageError(f"flush_interval must be in (0, {FLUSH_INTERVAL}] seconds")
        self.path = Path(path)
        self.header = replace(header, frame_fields=True)  # what encode_event writes
        self.paths: list[Path] = []
        self._overwrite = overwrite
        self._rotate = rotate_bytes
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._dirty = False
        self._closed = False
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._part_events = 0
        self._part_bytes = 0
        self._first: Event | None = None
        self._last: Event | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._check_targets()
        self._open_part(0)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_flush_loop,
            args=(weakref.ref(self), self._stop, flush_interval / 2),
            name="rancherlab-recording-flush",
            daemon=True,
        )
        self._thread.start()

    # public API

    @property
    def count(self) -> int:
        """Events written so far (all parts)."""
        return self._total

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, event: Event) -> None:
        """Append one event (flushed within a second)."""
        line = self._line(event)
        with self._lock:
            self._write_locked(event, line)

    def write_many(self, events: Iterable[Event]) -> None:
        """Append a batch of events and flush them."""
        lines = [(event, self._line(event)) for event in events]
        with self._lock:
            for event, line in lines:
                self._write_locked(event, line)
            self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def close(self, summary: Mapping[str, Any] | None = None) -> None:
        """Write the summary line (counts, plus `summary`'s fields) and close; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            try:
                info = self._summary()
                if len(self.paths) > 1:
                    info["parts"] = len(self.paths)
                    info["total_events"] = self._total
                if summary:
                    info.update(summary)
                self._emit(_dumps({"summary": info}) + b"\n")
            finally:
                self._close_part()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        self.close({"aborted": exc_type.__name__} if exc_type is not None else None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<RecordingWriter {self.path.name} {self.header.dialect} {self.header.scope} {self._total} events {state}>"
        )

    # internals

    def _line(self, event: Event) -> bytes:
        if event.dialect != self.header.dialect:
            raise ValueError(f"a {self.header.dialect} recording cannot hold a {event.dialect} event")
        return encode_event(event)

    def _write_locked(self, event: Event, line: bytes) -> None:
        if self._closed:
            raise ValueError(f"recording {self.path.name} is closed")
        if self._rotate is not None and self._part_events and self._part_bytes + len(line) > self._rotate:
            self._rotate_part()
        self._emit(line)
        self._part_events += 1
        self._total += 1
        self._counts[event.kind] += 1
        if self._first is None:
            self._first = event
        self._last = event

    def _emit(self, data: bytes) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self._part_bytes += len(data)
        self._dirty = True

    def _flush_locked(self) -> None:
        if self._fh is not None and self._dirty:
            self._fh.flush()  # GzipFile.flush does a Z_SYNC_FLUSH and flushes the file under it
            if self._raw is not None and self._raw is not self._fh:
                self._raw.flush()
            self._dirty = False

    def _flush_if_dirty(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _summary(self) -> dict[str, Any]:
        info: dict[str, Any] = {"events": self._part_events, "kinds": dict(sorted(self._counts.items()))}
        if self._first is not None and self._last is not None:
            info.update(first_seq=self._first.seq, last_seq=self._last.seq, first_t=self._first.t, last_t=self._last.t)
        return info

    def _rotate_part(self) -> None:
        nxt = len(self.paths)
        info = self._summary()
        info["continued_in"] = _part_path(self.path, nxt).name
        self._emit(_dumps({"summary": info}) + b"\n")
        self._close_part()
        self._counts.clear()
        self._first = None
        self._open_part(nxt)

    def _check_targets(self) -> None:
        stale = _sibling_parts(self.path) if self._rotate is not None or self._overwrite else []
        existing = [p for p in (self.path, *stale) if p.exists()]
        if existing and not self._overwrite:
            raise RecordingExistsError(
                f"{existing[0]} already exists; rancherlab never overwrites a recording. Choose another name or "
                "pass overwrite=True."
            )
        for p in stale:  # parts of an older, longer recording that this one replaces
            p.unlink(missing_ok=True)

    def _open_part(self, index: int) -> None:
        path = _part_path(self.path, index)
        try:
            raw = open(path, "wb" if self._overwrite else "xb")  # noqa: SIM115 - closed in _close_part
        except FileExistsError:
            raise RecordingExistsError(
                f"{path} already exists; rancherlab never overwrites a recording. "
                "Choose another name or pass overwrite=True."
            ) from None
        fh: IO[bytes] = raw
        if path.name.endswith(".gz"):
            fh = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # type: ignore[assignment]
        self._raw, self._fh = raw, fh
        self.paths.append(path)
        self._part_events = 0
        self._part_bytes = 0
        header = self.header if index == 0 else _with_part(self.header, index)
        self._emit(_dumps(header.to_json()) + b"\n")
        self._flush_locked()

    def _close_part(self) -> None:
        fh, raw = self._fh, self._raw
        self._fh = self._raw = None
        if fh is None or raw is None:
            return
        try:
            fh.flush()
            if fh is not raw:
                fh.close()  # writes the gzip trailer; leaves `raw` open
            raw.flush()
            os.fsync(raw.fileno())
        finally:
            raw.close()
        self._dirty = False


def _flush_loop(ref: weakref.ReferenceType[RecordingWriter], stop: threading.Event, period: float) -> None:
    """Flush a writer twice a period until it is closed or garbage (a weak reference keeps it collectable)."""
    while not stop.wait(period):
        writer = ref()
        if writer is None:
            return
        writer._flush_if_dirty()
        del writer


def _with_part(header: RecordingHeader, index: int) -> RecordingHeader:
    return replace(header, part=index)


def _part_path(path: Path, index: int) -> Path:
    if index == 0:
        return path
    name = path.name
    gz = name.endswith(".gz")
    inner = name[:-3] if gz else name
    suffix = Path(inner).suffix
    stem = inner[: len(inner) - len(suffix)] if suffix else inner
    return path.with_name(f"{stem}.{index}{suffix}{'.gz' if gz else ''}")


def _sibling_parts(path: Path) -> list[Path]:
    """Existing rotation parts (``name.N.jsonl``) of the recording at `path`."""
    if not path.parent.is_dir():
        return []
    name = path.name
    gz = ".gz" if name.endswith(".gz") else ""
    inner = name[: len(name) - len(gz)]
    suffix = Path(inner).suffix
    stem = inner[: len(inner) - len(suffix)]
    pattern = re.compile(re.escape(stem) + r"\.[1-9]\d*" + re.escape(suffix + gz))
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))


# --- reader -----------------------------------------------------------------------------------------


class Recording:
    """A recording opened for reading: `header`, then its events by iteration (streamed, constant memory).

    Each pass re-reads the file(s). `skipped` counts the lines the last pass skipped (tolerant mode);
    `skipped_files` names the files of a folder that tolerant mode left out, with why (an empty file, a
    newer format version, not a recording); `summary` is the closing summary line (None when the writer did
    not close cleanly).
    """

    def __init__(
        self,
        path: Path,
        files: list[Path],
        headers: list[RecordingHeader],
        *,
        strict: bool,
        max_frame_bytes: int | None,
        skipped_files: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.path = path
        self.files = tuple(files)
        self.headers = tuple(headers)
        self.strict = strict
        self.skipped = 0
        self.skipped_files = tuple(skipped_files)
        self._max = max_frame_bytes
        self._summary: dict[str, Any] | None = None
        self._summary_known = False

    @property
    def header(self) -> RecordingHeader:
        return self.headers[0]

    @property
    def dialect(self) -> Dialect:
        return self.header.dialect

    @property
    def summary(self) -> dict[str, Any] | None:
        """The last file's summary line; found by a quick scan when no pass has read it yet."""
        if not self._summary_known:
            self._summary = _scan_summary(self.files[-1], self._line_limit(self.headers[-1]))
            self._summary_known = True
        return self._summary

    def events(self) -> Iterator[Event]:
        return iter(self)

    def __iter__(self) -> Iterator[Event]:
        self.skipped = 0
        problems: list[str] = []
        for path, header in zip(self.files, self.headers):
            self._summary, self._summary_known = None, False
            yield from self._iter_file(path, header, problems)  # the summary and problems come aside
            self._summary_known = True
            if len(self.files) > 1 and problems and not problems[0].startswith(path.name):
                problems[0] = f"{path.name} {problems[0]}"
        self.skipped = len(problems)
        if self.skipped or self.skipped_files:
            what = [f"{self.skipped} unreadable line(s)"] if self.skipped else []
            what += [f"{len(self.skipped_files)} file(s)"] if self.skipped_files else []
            first = problems[0] if problems else f"{self.skipped_files[0][0]}: {self.skipped_files[0][1]}"
            warnings.warn(f"{self.path}: skipped {' and '.join(what)}; first: {first}", RecordingWarning, stacklevel=2)

    def __repr__(self) -> str:
        h = self.header
        parts = f" {len(self.files)} files" if len(self.files) > 1 else ""
        return f"<Recording {self.path.name} {h.dialect} {h.scope}{parts}>"

    def _line_limit(self, header: RecordingHeader) -> int:
        return line_limit(self._max if self._max is not None else header.max_frame_bytes)

    def _iter_file(self, path: Path, header: RecordingHeader, problems: list[str]) -> Iterator[Event]:
        """The events of one file; its summary goes to `self._summary` and, in tolerant mode, what was skipped to
        `problems` (one text per line)."""
        produced = 0
        dialect = header.dialect
        indexed = header.frame_fields
        with open_recording_file(path, max_frame_bytes=self._max) as rf:
            for lineno, data, problem in rf.lines():
                if problem == "long":
                    if self.strict:
                        raise LineTooLongError(path, lineno, rf.too_long())
                    problems.append(f"line {lineno}: longer than {rf.limit} bytes")
                    continue
                if data is not None:
                    event = _indexed_frame(data, dialect) if indexed else None  # nearly every line
                    try:
                        if event is None:
                            obj = _loads(data)
                            if (
                                type(obj) is dict
                                and "summary" in obj
                                and len(obj) == 1
                                and type(obj["summary"]) is dict
                            ):
                                self._summary = obj["summary"]
                            else:
                                event = decode_event(obj, dialect, frame_fields=indexed)
                    except _LINE_ERRORS as exc:
                        if problem is None:
                            if self.strict:
                                raise RecordingCorruptError(path, lineno, f"not a valid event line ({exc})") from None
                            problems.append(f"line {lineno}: {exc}")
                            continue
                    else:
                        if event is not None:
                            produced += 1
                            yield event
                        if problem != "stream":
                            continue
                # The file ends inside a line, or its gzip stream was cut or damaged.
                if self.strict:
                    raise RecordingTruncatedError(path, lineno, cut_message(problem, produced))
                problems.append(f"line {lineno}: cut short ({cut_reason(problem)})")


_LINE_ERRORS: Final = (ValueError, TypeError, RecursionError, OverflowError)


def cut_reason(problem: str | None) -> str:
    """Why a file ended early, from the line reader's problem code ("stream" or "unterminated")."""
    return "its gzip stream is cut short or damaged" if problem == "stream" else "its last line is incomplete"


def cut_message(problem: str | None, produced: int) -> str:
    """The `RecordingTruncatedError` text for a file that ends early after `produced` events."""
    return (
        f"the file was cut short ({cut_reason(problem)}: the writer was killed or the copy is partial); "
        f"the {produced} event(s) before it were read. Open it with strict=False to read what is there."
    )


def line_limit(max_frame_bytes: int) -> int:
    """The longest line a reader accepts: a frame's JSON text can double when escaped, plus the event fields."""
    return 2 * max_frame_bytes + 1024


def read_recording(
    path: str | os.PathLike[str], *, strict: bool = True, max_frame_bytes: int | None = None
) -> Recording:
    """Open a recording (a file, or a folder holding one recording and its rotation parts) and validate its header(s).

    `strict` raises `RecordingCorruptError` at the first bad line; `strict=False` skips bad lines,
    counts them in `Recording.skipped` and warns once per pass (`RecordingWarning`); in a folder it also
    leaves out files whose header is unusable (empty, a newer format version, not a recording), named in
    `Recording.skipped_files`. A folder whose files belong to different streams (dialect or scope) raises
    `MixedRecordingsError` naming them: read those with `rancherlab.analysis.load`, file by file.
    Raises `NoRecordingsError` (a FileNotFoundError) when there is nothing to read.
    """
    root = Path(path)
    if max_frame_bytes is not None and (not _is_int(max_frame_bytes) or max_frame_bytes <= 0):
        raise UsageError("max_frame_bytes must be a positive number of bytes")
    found = recording_files(root)
    files: list[Path] = []
    headers: list[RecordingHeader] = []
    skipped: list[tuple[str, str]] = []
    for p in found:
        try:
            headers.append(_read_header(p))
        except RecordingFormatError as exc:
            if strict or len(found) == 1:
                raise
            skipped.append((p.name, str(exc)))
            continue
        files.append(p)
    if not files:
        raise RecordingFormatError(f"{root}: no readable recording; first problem: {skipped[0][1]}")
    streams = {(h.dialect, h.scope) for h in headers}
    if len(streams) > 1:
        raise MixedRecordingsError(root, {p.name: (h.dialect, h.scope) for p, h in zip(files, headers)})
    return Recording(root, files, headers, strict=strict, max_frame_bytes=max_frame_bytes, skipped_files=skipped)


def read_events(
    path: str | os.PathLike[str], *, strict: bool = True, max_frame_bytes: int | None = None
) -> Iterator[Event]:
    """The events of a recording (file or folder), streamed."""
    yield from read_recording(path, strict=strict, max_frame_bytes=max_frame_bytes)


def recording_files(path: str | os.PathLike[str]) -> list[Path]:
    """A file as is; for a folder, its ``*.jsonl`` / ``*.jsonl.gz`` files with rotation parts in order.

    Raises `NoRecordingsError` (a FileNotFoundError) for a missing path or a folder without recordings.
    """
    root = Path(path)
    if root.is_dir():
        found = [p for p in root.iterdir() if p.is_file() and _PART_NAME.match(p.name)]
        if not found:
            raise NoRecordingsError(f"{root} holds no recordings (*.jsonl or *.jsonl.gz files)")
        return sorted(found, key=_part_sort_key)
    if not root.exists():
        raise NoRecordingsError(f"no such recording: {root}")
    return [root]


def discover(path_or_paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The recording files named by one path or several (files, or folders of recordings), in order.

    The one discovery every reader uses: a folder gives its ``*.jsonl`` / ``*.jsonl.gz`` files with rotation
    parts in order. Raises `NoRecordingsError` (a FileNotFoundError) for a missing path or an empty folder.
    """
    items = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    if not items:
        raise NoRecordingsError("no recordings named")
    return [f for item in items for f in recording_files(item)]


def recording_name(path: Path) -> str:
    """The recording a file belongs to: rotation parts (``name.1.jsonl``) share their first part's name."""
    m = _PART_NAME.match(path.name)
    return f"{m['base']}{m['suffix']}" if m else path.name


def _part_sort_key(path: Path) -> tuple[str, str, int]:
    m = _PART_NAME.match(path.name)
    assert m is not None
    return m["base"], m["suffix"], int(m["part"] or 0)


class RecordingFile:
    """One recording file opened once: its validated `header`, then `lines()` of the rest in bounded memory.

    Made by `open_recording_file`. `limit` is the longest line accepted (bytes); `position()` is how far into
    the file on disk (compressed bytes for gzip) reading has got, for progress bars.
    """

    def __init__(self, path: Path, raw: IO[bytes], stream: io.BufferedIOBase, max_frame_bytes: int | None) -> None:
        self.path = path
        self._raw = raw
        self._reader = _LineReader(stream, HEADER_LIMIT, header=True)
        self._lines = iter(self._reader)
        self.header = _parse_header(path, next(self._lines, None))
        self.max_frame_bytes = max_frame_bytes if max_frame_bytes is not None else self.header.max_frame_bytes
        self.limit = line_limit(self.max_frame_bytes)
        self._reader.limit = self.limit

    def lines(self) -> Iterator[tuple[int, bytes | None, str | None]]:
        """(line number, bytes, problem) for line 2 on; see `_LineReader` for the problems."""
        return self._lines

    def blocks(self, size: int, *, keep: int = 1) -> Iterator[LineBlock | tuple[int, bytes | None, str]]:
        """The lines `lines()` gives, with runs of whole lines as `LineBlock`s of about `size` bytes, for readers
        that parse many lines in one call; lines with a problem come one by one as from `lines()`. A block's memory
        is reused once `keep` more blocks are out (`_LineReader.blocks`).

        The file is read again from its start, passing over the header line (the header's reader has read a
        chunk ahead): use either `lines()` or `blocks()` on one opened file.
        """
        stream = self._reader.stream
        on_disk = os.fstat(self._raw.fileno()).st_size
        stream.seek(0)
        # No block larger than the text can be (gzip text is rarely more than 8 times its size on disk), nor than
        # the longest line accepted: the reader holds no more than the line reader would.
        size = max(1, min(size, self.limit, on_disk if stream is self._raw else 8 * on_disk))
        return _LineReader(stream, self.limit).blocks(size, first=2, skip=1, keep=keep)

    def position(self) -> int:
        return self._raw.tell()

    def too_long(self) -> str:
        """Why a line longer than `limit` was skipped, and how to read it."""
        return (
            f"longer than {self.limit} bytes (the limit for max_frame_bytes {self.max_frame_bytes}); "
            "it was not read. Pass a larger max_frame_bytes to read it"
        )


@contextmanager
def open_recording_file(path: str | os.PathLike[str], *, max_frame_bytes: int | None = None) -> Iterator[RecordingFile]:
    """Open one recording file once (gzip or not, by its magic bytes) and validate its header.

    Raises `NoRecordingsError` when it does not exist and `RecordingFormatError` / `RecordingVersionError`
    when it is unreadable, empty or not a recording this version reads.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise NoRecordingsError(f"no such recording: {path}") from None
    except OSError as exc:
        raise RecordingFormatError(
            f"{path} cannot be read as a recording: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        stream: io.BufferedIOBase = raw
        if raw.read(2) == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        raw.seek(0)
        yield RecordingFile(path, raw, stream, max_frame_bytes)
    finally:
        raw.close()


def _read_header(path: Path) -> RecordingHeader:
    with open_recording_file(path) as rf:
        return rf.header


def _parse_header(path: Path, first: tuple[int, bytes | None, str | None] | None) -> RecordingHeader:
    if first is None:
        raise RecordingFormatError(f"{path} is empty: not a rancherlab recording")
    _, data, problem = first
    if data is None:
        raise RecordingFormatError(
            f"{path} is not a rancherlab recording: its first line is not a header "
            f"({'longer than a header can be' if problem == 'long' else 'unreadable'})"
        )
    try:
        doc = _loads(data)
    except (ValueError, RecursionError):
        raise RecordingFormatError(
            f"{path} is not a rancherlab recording: its first line is not a JSON header"
        ) from None
    return RecordingHeader.from_json(doc, str(path))


def _scan_summary(path: Path, limit: int) -> dict[str, Any] | None:
    summary = None
    try:
        with _open_stream(path) as stream:
            for _, data, _problem in _LineReader(stream, limit):
                if data is not None and data.startswith(b'{"summary"'):
                    try:
                        obj = _loads(data)
                    except (ValueError, RecursionError):
                        continue
                    if isinstance(obj, dict) and isinstance(obj.get("summary"), dict):
                        summary = obj["summary"]
    except OSError:
        return None
    return summary


class _open_stream:
    """Context manager: the file's bytes, gunzipped when it starts with the gzip magic."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw: IO[bytes] | None = None

    def __enter__(self) -> io.BufferedIOBase:
        raw = open(self.path, "rb")
        self._raw = raw
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            return gzip.GzipFile(fileobj=raw, mode="rb")
        raw.seek(0)
        return raw

    def __exit__(self, *exc: object) -> None:
        if self._raw is not None:
            self._raw.close()


class _Buffers:
    """Read buffers of `_LineReader.blocks`, kept for the next reader (of the next file, or the next load): in a new
    buffer every page is faulted in and zeroed first, which costs more than reading the text into it. At most `count`
    buffers of at most `largest` bytes are kept, and one still referenced (a block of it is held somewhere) is not
    handed out."""

    def __init__(self, count: int, largest: int) -> None:
        self.count, self.largest = count, largest
        self._kept: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        """The smallest kept buffer of at least `size` bytes that nothing else references, or a new one."""
        with self._lock:
            kept, best = self._kept, -1
            for i in range(len(kept)):
                b = kept[i]
                # references: the list, `b` and getrefcount's argument: no block of it is out
                if len(b) >= size and sys.getrefcount(b) == 3 and (best < 0 or len(b) < len(kept[best])):
                    best = i
            if best >= 0:
                return kept.pop(best)
        return bytearray(size)

    def give(self, buffers: Iterable[bytearray]) -> None:
        with self._lock:
            kept = self._kept
            kept.extend(b for b in buffers if len(b) <= self.largest and all(b is not k for k in kept))
            kept.sort(key=len, reverse=True)
            del kept[self.count :]


_BUFFERS: Final = _Buffers(2, 64 * 1024 * 1024 + _BLOCK_CHUNK)


class LineBlock(NamedTuple):
    """Whole lines of a recording file in one piece (`RecordingFile.blocks`): `first` is the number of the first
    line, `data` the bytes (a memoryview; each line ends with its newline), `ends` a numpy array of the offset of
    each line's newline in `data`, `ascii` True when no byte is past 0x7f (so the text is valid UTF-8)."""

    first: int
    data: memoryview
    ends: Any
    ascii: bool


class _LineReader:
    """(line number, bytes without newline, problem) of a byte stream, in bounded memory.

    problem: None; "long" (data None: the line passed `limit` and was streamed past, never held whole);
    "unterminated" (the last line has no newline); "stream" (the gzip stream ended early or is damaged; data,
    when not None, is what came before the cut). `limit` may change between lines (the header has its own).
    With `header`, a first line past the limit ends the iteration (a file without newlines is not read to its end).
    """

    def __init__(self, stream: io.BufferedIOBase, limit: int, *, header: bool = False) -> None:
        self.stream = stream
        self.limit = limit
        self.header = header

    def __iter__(self) -> Iterator[tuple[int, bytes | None, str | None]]:
        stream = self.stream
        buf = bytearray()
        lineno = 0
        skipping = False
        broken = False
        while True:
            try:
                chunk = stream.read1(_CHUNK)  # read1: data before a gzip cut is returned, not lost
            except (EOFError, OSError, zlib.error):
                broken = True  # gzip.BadGzipFile is an OSError
                chunk = b""
            if not chunk:
                break
            start = 0
            size = len(chunk)
            find = chunk.find
            while True:
                nl = find(b"\n", start)
                end = size if nl < 0 else nl
                if not skipping:
                    if len(buf) + (end - start) > self.limit:
                        if self.header and lineno == 0:
                            yield 1, None, "long"
                            return
                        skipping = True
                        buf.clear()
                    elif nl >= 0 and not buf:  # the common case: a whole line inside the chunk, one copy
                        lineno += 1
                        yield lineno, chunk[start:nl], None
                        start = nl + 1
                        continue
                    else:
                        buf += chunk[start:end]
                if nl < 0:
                    break
                lineno += 1
                if skipping:
                    yield lineno, None, "long"
                    skipping = False
                else:
                    yield lineno, bytes(buf), None
                    buf.clear()
                start = nl + 1
        if skipping:
            yield lineno + 1, None, "long"
            if broken:
                yield lineno + 1, None, "stream"
        elif buf:
            yield lineno + 1, bytes(buf), "stream" if broken else "unterminated"
        elif broken:
            yield lineno + 1, None, "stream"

    def blocks(
        self, size: int, *, first: int = 1, skip: int = 0, keep: int = 1
    ) -> Iterator[LineBlock | tuple[int, None, str]]:
        """The lines `__iter__` gives (numbered from `first`, after `skip` lines passed over unread), with runs of
        whole lines handed over as `LineBlock`s of about `size` bytes (more when one line is longer), for readers
        that parse many lines in one call; the lines `__iter__` marks with a problem (over-long, the last one when
        unterminated or cut) come one by one, as `__iter__` gives them.

        A block's memory is reused once `keep` more blocks have been yielded and the reader is asked for more, so
        the consumer can hold `keep` blocks (parsing them) while the next is read; the buffers are kept for the next
        reader (`_Buffers`). Newlines are found chunk by chunk while the chunk is in the CPU cache; an over-long
        line is streamed past, never held whole.
        """
        import numpy as np

        stream, limit = self.stream, self.limit
        buf = _BUFFERS.take(size + _BLOCK_CHUNK)
        view = memoryview(buf)
        retired: deque[tuple[bytearray, int]] = deque()  # earlier buffers, with the number of their last block
        out = 0  # blocks yielded
        fresh = True  # no block of `buf` is out: it may be rewritten
        start = done = pos = 0  # buf[start:done]: whole lines waiting (newlines in `ends`); buf[done:pos]: a line begun
        ends: list[Any] = []
        ascii_ = True  # no byte of buf[start:pos] is past 0x7f
        dense = False  # short lines: numpy finds their newlines faster than `find` does one by one
        lineno = first - 1
        skipping = skip > 0  # streaming past a line: one of the `skip` first ones, or one over `limit`
        broken = False

        def block() -> LineBlock:
            nonlocal lineno, start, ends, ascii_, fresh, out
            at = np.concatenate(ends) - start
            item = LineBlock(lineno + 1, view[start:done], at, ascii_)
            lineno += len(at)
            start, ends, fresh, out = done, [], False, out + 1
            ascii_ = pos == done or int(np.frombuffer(buf, np.uint8, pos - done, done).max()) < 0x80
            return item

        try:
            while True:
                if pos + _BLOCK_CHUNK > len(buf):  # make room: what is not handed over moves to the start of a buffer
                    if done > start:
                        yield block()
                    keep_ = pos - start
                    need = max(size, keep_) + _BLOCK_CHUNK
                    if (
                        not fresh
                    ):  # blocks of `buf` are out: a buffer whose blocks are all `keep` blocks old, or a new one
                        if len(buf) <= 2 * (size + _BLOCK_CHUNK):
                            retired.append((buf, out))
                        old = retired[0] if retired and out - retired[0][1] >= keep else None
                        if old is not None:
                            retired.popleft()
                        nxt = old[0] if old is not None and len(old[0]) >= need else _BUFFERS.take(need)
                    elif keep_ + _BLOCK_CHUNK <= len(buf):  # nothing of `buf` is out: it is rewritten
                        nxt = buf
                    else:  # a line longer than the buffer: a larger one
                        nxt = bytearray(keep_ + max(keep_ // 2, _BLOCK_CHUNK))
                    moved = memoryview(nxt)
                    moved[:keep_] = bytes(view[start:pos]) if nxt is buf else view[start:pos]
                    ends = [e - start for e in ends]
                    buf, view, fresh = nxt, moved, True
                    done, pos, start = done - start, keep_, 0
                try:
                    got = stream.readinto1(view[pos : pos + _BLOCK_CHUNK])  # one read: data before a gzip cut is kept
                except (EOFError, OSError, zlib.error):
                    broken = True  # gzip.BadGzipFile is an OSError
                    got = 0
                if not got:
                    break
                new = np.frombuffer(buf, np.uint8, got, pos)
                if dense:
                    found = np.flatnonzero(new == 10) + pos
                else:
                    at, find, stop, nl = [], buf.find, pos + got, buf.find(b"\n", pos, pos + got)
                    while nl >= 0:
                        at.append(nl)
                        nl = find(b"\n", nl + 1, stop)
                    found = np.array(at, dtype=np.int64)
                dense = len(found) > got >> 10
                ascii_ = ascii_ and int(new.max()) < 0x80
                pos += got
                while skipping and len(found):  # the line being streamed past ends here
                    if skip:
                        skip -= 1
                    else:
                        lineno += 1
                        yield lineno, None, "long"
                    skipping = skip > 0
                    start = done = int(found[0]) + 1
                    found = found[1:]
                if skipping:
                    pos = done  # nothing of it is kept
                    continue
                if len(found) and (found[0] - done > limit or (got > limit and (np.diff(found) > limit + 1).any())):
                    lengths = np.diff(found, prepend=done - 1) - 1
                    cut = 0
                    for k in np.flatnonzero(lengths > limit).tolist():  # lines over the limit that ended in this chunk
                        if k > cut:
                            ends.append(found[cut:k])
                            done = int(found[k - 1]) + 1
                        if done > start:
                            yield block()
                        lineno += 1
                        yield lineno, None, "long"
                        start = done = int(found[k]) + 1
                        cut = k + 1
                    found = found[cut:]
                if len(found):
                    ends.append(found)
                    done = int(found[-1]) + 1
                if pos - done > limit:  # the line begun is over the limit already: stream past the rest of it
                    if done > start:
                        yield block()
                    skipping = True
                    start = pos = done
                    ascii_ = True
                elif done - start >= size:
                    yield block()
            if done > start:
                yield block()
            if skipping:
                if not skip:
                    yield lineno + 1, None, "long"
                    if broken:
                        yield lineno + 1, None, "stream"
            elif pos > done:
                yield lineno + 1, bytes(view[done:pos]), "stream" if broken else "unterminated"  # type: ignore[misc]
            elif broken:
                yield lineno + 1, None, "stream"

        finally:  # the buffers go back for the next reader
            _BUFFERS.give([buf, *(b for b, _ in retired)])


# --- helpers ----------------------------------------------------------------------------------------


def _iso(ts: datetime) -> str:
    text = ts.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _opt(value: Any, kind: type) -> bool:
    return value is None or isinstance(value, kind)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
