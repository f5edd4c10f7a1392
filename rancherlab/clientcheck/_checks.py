"""The report card of a client check: what a client did around each fault, judged against what Rancher needs.

Pure code: a list of `Observation`s (what the fault proxy saw, in order) in, `CheckResult`s out. Each check
names the Rancher behaviour it models and what a client should do, with the sources in
`docs`-style prose, so a failing line teaches the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..protocol.steve import same_type

ObservationKind = Literal[
    "attempt",  # an upgrade request arrived (detail: path, refused)
    "connected",  # an upgrade was accepted (detail: dialect, path)
    "closed",  # a client connection ended
    "rest",  # a REST GET (detail: path, status, revision)
    "subscribe",  # a Steve watch start (detail: key, type, revision, known)
    "unsubscribe",  # a Steve watch stop (detail: key)
    "fault",  # the schedule injected a fault (detail: name, keys)
    "answered",  # the proxy answered a watch start itself (detail: key, how, revision)
    "overflow",  # the client read too slowly and lost its socket (Norman) or watches (Steve)
    "stall_unnoticed",  # a stalled connection was still open when the stall ended
    "credential_in_url",  # a request carried the credential in its URL (detail: where)
]


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing the fault proxy saw. `t` is in seconds since the check started; `conn` numbers sockets from 1."""

    t: float
    kind: ObservationKind
    conn: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)


Outcome = Literal["pass", "fail", "n/a"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report card."""

    id: str
    title: str
    outcome: Outcome
    models: str  # the Rancher behaviour the check throws at the client
    should: str  # what a client should do about it
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("id", "title", "outcome", "models", "should", "detail")}


# What each check models and expects; the ids are stable (they name the JSON report's entries).
CHECKS: Final[dict[str, tuple[str, str, str]]] = {
    "reconnects_after_drop": (
        "reconnects after a drop",
        (
            "Rancher closes sockets without a close frame (gorilla's Close; the client sees 1006) when a shared "
            "watch ends, a proxy cuts it, or the server goes away."
        ),
        "Treat 1006 as routine: open a new socket.",
    ),
    "backoff_not_spin": (
        "retries with backoff, not a spin",
        "While Rancher restarts, its load balancer answers 503 to every upgrade for seconds.",
        "Wait between attempts (about 1 s, doubling, capped, with jitter); never retry in a tight loop.",
    ),
    "notices_silent_socket": (
        "notices a silent socket",
        "A hung server or proxy keeps the TCP connection open and sends nothing (no pings either).",
        (
            "Close and reconnect when no frame arrived for longer than the ping interval allows "
            "(Norman pings every 5 s, Steve every 30 s; the dashboard waits 35 s)."
        ),
    ),
    "relists_or_resumes_after_gap": (
        "re-lists or resumes after each gap",
        (
            "Events sent while a client was away are not replayed: Norman replays only to a watch's first "
            "subscriber, and Steve's SQL cache never."
        ),
        "After reconnecting, list over REST (or, on Steve, watch from a revision you actually received).",
    ),
    "rewatches_once_after_stop": (
        "watches again, once, after resource.stop",
        (
            "Steve ends single watches with resource.stop (watch expiry after 30 min, a watch answered "
            "start-then-stop) and keeps the socket open."
        ),
        "Send one new watch for the same key from the last revision received; do not loop.",
    ),
    "relists_after_too_old": (
        're-lists after "too old"',
        'Steve answers a resume from a revision it no longer has with resource.error "too old" and resource.stop.',
        "List the type over REST, then watch from the list's revision; never retry the same revision.",
    ),
    "no_duplicate_watches": (
        "never holds two watches for one key",
        "Steve ignores a watch whose key is already active on the socket.",
        "Keep one watch per key; stop it before starting it again.",
    ),
    "keeps_up_with_burst": (
        "keeps up with a burst",
        "Rancher drops a subscriber whose 100-event buffer is full (Norman closes the socket; Steve stops the watch).",
        "Read frames as they arrive and do slow work elsewhere.",
    ),
    "no_credential_in_url": (
        "keeps the credential out of the URL",
        "URLs end up in proxy and server access logs.",
        "Send the token in an Authorization header (or rely on the browser's R_SESS cookie).",
    ),
    "state_matches_server": (
        "holds what the server holds",
        "The sum of the above: after drops, stalls, restarts, stops and bursts the client's objects must still be right.",
        "Write the ids you hold to RANCHERLAB_STATE_FILE; they must equal a fresh list at the end.",
    ),
}

# A spin: more attempts than this per second of outage, or three within this many seconds.
SPIN_RATE: Final = 4.0
SPIN_BURST: Final = 0.1


def _result(check: str, outcome: Outcome, detail: str = "") -> CheckResult:
    title, models, should = CHECKS[check]
    return CheckResult(check, title, outcome, models, should, detail)


def _faults(obs: Sequence[Observation], name: str) -> list[Observation]:
    return [o for o in obs if o.kind == "fault" and o.detail.get("name") == name]


def _phase(start: Observation, obs: Sequence[Observation]) -> Sequence[Observation]:
    """What the client did after `start` (an observation of `obs`), up to the next fault."""
    i = _index(start, obs) + 1
    end = next((j for j in range(i, len(obs)) if obs[j].kind == "fault"), len(obs))
    return obs[i:end]


def _index(o: Observation, obs: Sequence[Observation]) -> int:
    return next(i for i, x in enumerate(obs) if x is o)


def evaluate(
    obs: Sequence[Observation],
    *,
    dialect: str | None,
    state: Mapping[str, tuple[set[str], set[str]]] | None = None,
) -> list[CheckResult]:
    """Judge what the client did. `state` maps type → (ids the client wrote, ids the server holds), if it wrote any."""
    results = [
        _reconnects(obs),
        _backoff(obs),
        _silence(obs),
        _relists(obs, dialect),
        _rewatches(obs, dialect),
        _too_old(obs, dialect),
        _duplicates(obs, dialect),
        _burst(obs),
        _credential(obs),
        _state(state),
    ]
    return results


def _reconnects(obs: Sequence[Observation]) -> CheckResult:
    drops = _faults(obs, "drop") + _faults(obs, "restart")
    if not drops:
        return _result("reconnects_after_drop", "n/a", "no drop was injected")
    missing = [
        f"{f.detail['name']} at {f.t:.1f} s" for f in drops if not any(o.kind == "connected" for o in _phase(f, obs))
    ]
    if missing:
        return _result("reconnects_after_drop", "fail", "no new socket after: " + ", ".join(missing))
    return _result("reconnects_after_drop", "pass", f"reconnected after each of {len(drops)} drops")


def _backoff(obs: Sequence[Observation]) -> CheckResult:
    restarts = _faults(obs, "restart")
    if not restarts:
        return _result("backoff_not_spin", "n/a", "no restart was injected")
    for fault in restarts:
        down = float(fault.detail.get("down", 0.0))
        refused = [o.t for o in _phase(fault, obs) if o.kind == "attempt" and o.detail.get("refused")]
        if not refused:
            continue
        rate = len(refused) / max(down, 1e-9)
        bursts = [b - a for a, b in zip(refused, refused[2:]) if b - a < SPIN_BURST]
        if rate > SPIN_RATE or bursts:
            return _result(
                "backoff_not_spin",
                "fail",
                f"{len(refused)} attempts in a {down:g} s outage ({rate:.1f}/s; at most {SPIN_RATE:g}/s is a retry, "
                "more is a spin)",
            )
        return _result("backoff_not_spin", "pass", f"{len(refused)} attempts in a {down:g} s outage")
    return _result("backoff_not_spin", "pass", "no attempt during the outage (it waited it out)")


def _silence(obs: Sequence[Observation]) -> CheckResult:
    if not _faults(obs, "stall"):
        return _result("notices_silent_socket", "n/a", "no stall was injected")
    unnoticed = [o for o in obs if o.kind == "stall_unnoticed"]
    if unnoticed:
        return _result(
            "notices_silent_socket",
            "fail",
            f"{len(unnoticed)} socket(s) still open when the stall ended; no liveness check",
        )
    return _result("notices_silent_socket", "pass", "closed the silent socket and reconnected")


def _relists(obs: Sequence[Observation], dialect: str | None) -> CheckResult:
    connects = [o for o in obs if o.kind == "connected"]
    if len(connects) < 2:
        return _result("relists_or_resumes_after_gap", "n/a", "no reconnection happened")
    bad: list[str] = []
    for c in connects[1:]:
        i = _index(c, obs)
        # from the previous socket's end (a client may list first, then connect) to the next socket
        start = max((j for j in range(i) if obs[j].kind == "closed"), default=0)
        end = next((j for j in range(i + 1, len(obs)) if obs[j].kind == "connected"), len(obs))
        listed = any(o.kind == "rest" for o in obs[start:end])
        resumed = dialect == "steve" and any(
            o.kind == "subscribe" and o.conn == c.conn and o.detail.get("revision") and o.detail.get("known")
            for o in obs[i:end]
        )
        if not (listed or resumed):
            bad.append(f"socket {c.conn} at {c.t:.1f} s")
    if bad:
        how = "neither listed over REST nor resumed from a received revision" if dialect == "steve" else "no REST list"
        return _result("relists_or_resumes_after_gap", "fail", f"{how} after: " + ", ".join(bad))
    return _result("relists_or_resumes_after_gap", "pass", f"every one of {len(connects) - 1} reconnections caught up")


def _rewatches(obs: Sequence[Observation], dialect: str | None) -> CheckResult:
    if dialect != "steve":
        return _result("rewatches_once_after_stop", "n/a", "Norman has no single watches")
    # a plain expiry, and the stop of a watch answered start-then-stop (the expiries that arm an answer
    # are judged by the answer: "too old" by its own check)
    stops = [f for f in _faults(obs, "expire") if not f.detail.get("then")]
    stops += [o for o in obs if o.kind == "answered" and o.detail.get("how") == "start-stop"]
    if not stops:
        return _result("rewatches_once_after_stop", "n/a", "no watch was stopped")
    bad: list[str] = []
    for stop in stops:
        pairs = stop.detail.get("stopped") if stop.kind == "fault" else [(stop.conn, stop.detail.get("key"))]
        for conn, key in pairs or ():
            # on the socket that got the stop: a new socket's watches are a reconnection, not a re-watch
            phase = _phase(stop, obs)
            again = [o for o in phase if o.kind == "subscribe" and o.conn == conn and o.detail.get("key") == key]
            gone = any(o.kind == "closed" and o.conn == conn for o in phase)
            if not again and not gone:
                bad.append(f"{key}: never watched again")
            elif len(again) > 1:
                bad.append(f"{key}: watched {len(again)} times (a loop)")
    if bad:
        return _result("rewatches_once_after_stop", "fail", "; ".join(bad))
    return _result("rewatches_once_after_stop", "pass", f"watched again after each of {len(stops)} stops")


def _too_old(obs: Sequence[Observation], dialect: str | None) -> CheckResult:
    if dialect != "steve":
        return _result("relists_after_too_old", "n/a", "Norman has no revisions")
    answers = [o for o in obs if o.kind == "answered" and o.detail.get("how") == "too-old"]
    if not answers:
        return _result("relists_after_too_old", "n/a", "the client never resumed from a revision, so none was too old")
    bad: list[str] = []
    for a in answers:
        after = _phase(a, obs)
        typ = str(a.detail.get("type", ""))
        listed = [o for o in after if o.kind == "rest" and _lists(o, typ)]
        same = [o for o in after if o.kind in ("subscribe",) and o.detail.get("revision") == a.detail.get("revision")]
        if same:
            bad.append(f"{a.detail.get('key')}: resumed from the same too-old revision {len(same)} more time(s)")
        elif not listed:
            bad.append(f"{a.detail.get('key')}: never listed {typ} over REST")
    if bad:
        return _result("relists_after_too_old", "fail", "; ".join(bad))
    return _result("relists_after_too_old", "pass", "listed again and watched from the list")


def _lists(o: Observation, typ: str) -> bool:
    """Is `o` a REST list of `typ` (its path ends in the type's id or plural, as Steve resolves it)?"""
    path = str(o.detail.get("path", "")).split("?", 1)[0].rstrip("/")
    return same_type(path.rsplit("/", 1)[-1], typ)


def _duplicates(obs: Sequence[Observation], dialect: str | None) -> CheckResult:
    if dialect != "steve":
        return _result("no_duplicate_watches", "n/a", "Norman has no single watches")
    dups = [o for o in obs if o.kind == "subscribe" and o.detail.get("duplicate")]
    if dups:
        return _result(
            "no_duplicate_watches",
            "fail",
            f"{len(dups)} watch start(s) for a key already active, e.g. {dups[0].detail['key']}",
        )
    return _result("no_duplicate_watches", "pass")


def _burst(obs: Sequence[Observation]) -> CheckResult:
    if not _faults(obs, "burst"):
        return _result("keeps_up_with_burst", "n/a", "no burst was sent")
    over = [o for o in obs if o.kind == "overflow"]
    if over:
        return _result(
            "keeps_up_with_burst", "fail", f"fell 100 events behind on {len(over)} socket(s) and was dropped"
        )
    sizes = [int(f.detail.get("events", 0)) for f in _faults(obs, "burst")]
    return _result("keeps_up_with_burst", "pass", f"kept up with {sum(sizes)} changes at once")


def _credential(obs: Sequence[Observation]) -> CheckResult:
    hits = [o for o in obs if o.kind == "credential_in_url"]
    if hits:
        return _result(
            "no_credential_in_url", "fail", f"{len(hits)} request(s) carried it in the {hits[0].detail['where']}"
        )
    return _result("no_credential_in_url", "pass")


def _state(state: Mapping[str, tuple[set[str], set[str]]] | None) -> CheckResult:
    if state is None:
        return _result("state_matches_server", "n/a", "the client wrote no RANCHERLAB_STATE_FILE")
    bad = []
    for typ, (held, truth) in sorted(state.items()):
        if held != truth:
            bad.append(f"{typ}: {len(truth - held)} missing, {len(held - truth)} stale")
    if bad:
        return _result("state_matches_server", "fail", "; ".join(bad))
    return _result("state_matches_server", "pass", ", ".join(f"{t}: {len(s[1])} ids" for t, s in sorted(state.items())))
