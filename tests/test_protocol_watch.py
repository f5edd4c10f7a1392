"""The Steve watch state machine, every transition, from apiserver's exact message strings; no sockets, no clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rancherlab.protocol import parse_frame
from rancherlab.protocol.event import Event
from rancherlab.protocol.steve import Watch, encode_event, error_event, start_event, stop_event
from rancherlab.protocol.watch import (
    Fatal,
    Relist,
    Rewatch,
    Stopped,
    WatchMachine,
    WatchState,
    classify_error,
    retry_delay,
)

POD = Watch("pod")
TOO_OLD = "event watch error: too old resource version: 100 (250)"


def frame(text: str) -> Event:
    return parse_frame(text, "steve")


def echo(w: Watch) -> dict[str, str]:
    f = w.fields()
    return {k: str(f.get(k) or "") for k in ("namespace", "resourceType", "id", "selector", "mode")}


def obj_event(name: str, oid: str, rev: str, w: Watch | None = POD, typ: str = "pod") -> Event:
    ns, _, short = oid.rpartition("/")
    data = {"id": oid, "type": typ, "metadata": {"name": short, "namespace": ns or None, "resourceVersion": rev}}
    return frame(encode_event(name, data=data, revision=rev, echo=echo(w) if w else None))


def start(w: Watch = POD) -> Event:
    return frame(start_event(echo(w)))


def stop(w: Watch = POD) -> Event:
    return frame(stop_event(echo(w)))


def error(text: str, w: Watch = POD) -> Event:
    return frame(error_event(text, echo(w)))


def machine(*watches: Watch, **kwargs: Any) -> tuple[WatchMachine, WatchState]:
    m = WatchMachine(watches or (POD,), **kwargs)
    return m, m.states[0]


def feed(m: WatchMachine, *events: Event, now: float = 0.0) -> list[Any]:
    out: list[Any] = []
    for e in events:
        out += m.receive(e, now)
    return out


# --- start ----------------------------------------------------------------------------------------------


def test_first_connection_lists_then_a_listed_watch_resumes_at_its_revision() -> None:
    m, w = machine()
    assert m.connected() == [Relist(w)]
    assert m.is_snapshot(w)
    m.listed(w, {("pod", "default/a")}, "120")
    assert (w.listed, w.revision, w.keys) == (True, "120", {("pod", "default/a")})
    assert not m.is_snapshot(w)  # the next listing is a resync
    assert feed(m, start()) == [] and w.started
    # a new connection: the revision is known, so watch from it without listing
    assert m.connected() == [Rewatch(w, "120")]
    assert not w.started


def test_without_snapshot_the_first_watch_has_no_revision_and_lists_nothing() -> None:
    m, w = machine(snapshot=False)
    assert m.connected() == [Rewatch(w, None)]
    m2, w2 = machine(snapshot=False, resync=True)
    w2.listed = True  # listed once before: with resync on, a connection without a revision re-lists
    assert m2.connected() == [Relist(w2)]


# --- changes, removes, revisions --------------------------------------------------------------------


def test_object_events_move_the_revision_forward_and_track_the_watchs_objects() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    feed(m, start(), obj_event("resource.create", "default/a", "101"), obj_event("resource.change", "default/b", "105"))
    assert w.revision == "105" and w.keys == {("pod", "default/a"), ("pod", "default/b")}
    feed(m, obj_event("resource.change", "default/a", "103"))  # a late, older revision does not move it back
    assert w.revision == "105"
    feed(m, obj_event("resource.remove", "default/a", "110"))
    assert w.revision == "110" and w.keys == {("pod", "default/b")}


def test_a_disguised_error_is_not_an_object_event() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    text = json.dumps({"name": "resource.change", "resourceType": "pod", "data": {"message": "too old", "type": "pod"}})
    assert feed(m, frame(text)) == []
    assert w.revision == "100" and w.keys == set() and not w.too_old


# --- errors and stops -------------------------------------------------------------------------------


def test_too_old_then_stop_relists_and_the_listing_gives_the_new_revision() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    assert feed(m, start(), error(TOO_OLD)) == []
    assert w.too_old
    actions = feed(m, stop(), now=10.0)
    assert actions == [Relist(w, 0.0)]
    assert w.revision is None and not w.too_old and not w.started
    m.listed(w, set(), "250")
    assert w.revision == "250"


def test_the_sql_cache_stores_too_old_text_is_recognised() -> None:
    assert classify_error("resourceversion too old") == "too_old"
    assert classify_error(TOO_OLD) == "too_old"


def test_too_old_without_listing_watches_from_now_not_from_the_refused_revision() -> None:
    m, w = machine(snapshot=False, resync=False)
    w.revision = "100"
    actions = feed(m, error(TOO_OLD), stop(), now=5.0)
    assert actions == [Rewatch(w, None, 0.0)]


def test_a_stop_rewatches_at_the_last_revision() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    feed(m, start(), obj_event("resource.change", "default/a", "140"))
    assert feed(m, stop(), now=1.0) == [Rewatch(w, "140", 0.0)]  # watch expiry: resume where it was


def test_repeated_stops_back_off_like_the_dashboard_and_reset_after_60_s() -> None:
    m, w = machine(retry_unit=0.25)
    m.listed(w, set(), "100")
    delays = [feed(m, stop(), now=float(t))[0].delay for t in range(12)]
    assert delays == [0.0, 0.25, 1.0, 2.25, 4.0, 6.25, 9.0, 12.25, 16.0, 20.25, 25.0, 25.0]  # n² × 250 ms, n ≤ 10
    assert feed(m, stop(), now=11.0 + 61.0)[0].delay == 0.0  # a minute without a stop: the count starts over
    assert feed(m, stop(), now=73.0)[0].delay == 0.25


def test_an_object_event_resets_the_back_off() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    feed(m, stop(), stop(), stop(), now=1.0)
    assert w.retries == 3
    feed(m, obj_event("resource.change", "default/a", "150"), now=2.0)
    assert feed(m, stop(), now=3.0) == [Rewatch(w, "150", 0.0)]


def test_retry_delay_is_the_dashboards_back_off() -> None:
    assert [retry_delay(n) for n in range(5)] == [0.0, 0.25, 1.0, 2.25, 4.0]
    assert retry_delay(50) == retry_delay(10) == 25.0
    assert retry_delay(2, unit=0.01) == pytest.approx(0.04)


def test_permission_error_stops_that_watch_and_the_others_go_on() -> None:
    ns = Watch("secret", namespace="kube-system")
    m = WatchMachine([POD, ns])
    pod_state, secret_state = m.states
    text = "PermissionDenied 403: can not list secret"
    assert feed(m, error(text, ns)) == []
    assert feed(m, stop(ns)) == [Stopped(secret_state, text)]
    assert secret_state.ended and not pod_state.ended
    assert m.connected() == [Relist(pod_state)]  # a new connection leaves the refused watch alone


def test_every_watch_refused_is_fatal() -> None:
    m, w = machine()
    text = "the server does not allow this method on the requested resource"
    actions = feed(m, error(text), stop())
    assert actions == [Stopped(w, text), Fatal(w, "denied", text)]


@pytest.mark.parametrize("text", ["failed to find schema nosuchtype", "schema pod does not support watching"])
def test_unknown_schema_is_fatal_at_once(text: str) -> None:
    m, w = machine()
    assert feed(m, error(text)) == [Fatal(w, "unknown_type", text)]


def test_another_error_then_stop_simply_rewatches() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    assert classify_error("slow reader detected") == "other"
    assert feed(m, error("slow reader detected"), stop()) == [Rewatch(w, "100", 0.0)]


def test_a_refusal_on_a_dropped_connection_is_forgotten_on_the_next() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    feed(m, error("PermissionDenied 403: can not list pod"))
    m.connected()  # the socket dropped before the stop: the new subscription gets a new answer
    assert feed(m, stop()) == [Rewatch(w, "100", 0.0)]


# --- notification mode ------------------------------------------------------------------------------


def test_notifications_keep_the_revision_and_relist_without_rewatching() -> None:
    changes = Watch("pod", mode="changes", debounce_ms=1000)
    m, w = machine(changes)
    m.listed(w, set(), "100")
    note = frame(
        encode_event("resource.changes", data={"type": "subscribe", "links": {}}, revision="130", echo=echo(changes))
    )
    assert feed(m, note) == [Relist(w, 0.0, then_watch=False)]
    assert w.revision == "130"
    m2, w2 = machine(changes, resync=False)
    assert feed(m2, note) == [] and w2.revision == "130"


def test_notifications_from_servers_before_revisions_on_changes() -> None:
    changes = Watch("pod", mode="changes")
    m, w = machine(changes)
    m.listed(w, set(), "100")
    note = frame(
        '{"name":"resource.changes","resourceType":"pod","mode":"resource.changes","data":{"type":"subscribe","links":{}}}\n'
    )
    assert feed(m, note) == [Relist(w, 0.0, then_watch=False)] and w.revision == "100"


# --- matching -------------------------------------------------------------------------------------------


def test_matching_by_echoed_key_tells_apart_watches_of_one_type() -> None:
    everything, one_ns, by_label = Watch("pod"), Watch("pod", namespace="shop"), Watch("pod", selector="app=web")
    m = WatchMachine([everything, one_ns, by_label])
    a, b, c = m.states
    assert m.match(start(one_ns)) is b
    assert m.match(stop(by_label)) is c
    assert m.match(obj_event("resource.change", "shop/x", "5", everything)) is a


def test_matching_by_type_and_plural_when_nothing_is_echoed() -> None:
    # apiserver before v0.6.1 echoed nothing on object events: route by data.type (id or plural, any case)
    pods, deployments = Watch("Pods"), Watch("apps.deployment")
    m = WatchMachine([pods, deployments])
    p, d = m.states
    assert m.match(obj_event("resource.create", "default/a", "1", None)) is p
    assert m.match(obj_event("resource.create", "default/web", "2", None, typ="apps.deployment")) is d
    assert m.match(obj_event("resource.create", "n", "3", None, typ="namespace")) is None
    # echoed as the client spelled it
    assert m.match(frame('{"name":"resource.start","resourceType":"Pods","data":{}}')) is p


def test_matching_by_type_prefers_the_watch_on_the_objects_namespace() -> None:
    shop, other = Watch("pod", namespace="shop"), Watch("pod", namespace="other")
    m = WatchMachine([other, shop])
    assert m.match(obj_event("resource.change", "shop/a", "9", None)) is m.states[1]


def test_a_single_watch_owns_every_message_but_pings() -> None:
    m, w = machine(Watch("count"))
    assert m.match(frame('{"name":"resource.stop","data":{}}')) is w
    assert m.match(frame('{"name":"ping","data":{"type":"subscribe","links":{},"version":"v2.9"}}')) is None


def test_events_of_other_watches_or_kinds_change_nothing() -> None:
    m, w = machine()
    m.listed(w, set(), "100")
    other = Watch("secret")
    assert feed(m, obj_event("resource.change", "default/s", "900", other, typ="secret")) == []
    assert w.revision == "100"
    assert m.receive(parse_frame('{"name":"ping","data":{}}', "norman"), 0.0) == []
