"""The object rules (key, revision, namespace, removal, the mirror) from plain frame strings, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rancherlab.protocol import parse_frame
from rancherlab.protocol.event import RESYNC_FINISHED, RESYNC_STARTED, Event
from rancherlab.protocol.objects import (
    ObjectMirror,
    compare_revisions,
    event_key,
    is_removal,
    later_revision,
    listed_by_key,
    object_event,
    object_key,
    object_namespace,
    object_revision,
    removes,
    revision_after,
)


def steve(name: str, obj: dict[str, Any], revision: str | None = None, **echo: str) -> Event:
    doc: dict[str, Any] = {"name": name, **echo}
    if revision is not None:
        doc["revision"] = revision
    doc["data"] = obj
    return parse_frame(json.dumps(doc), "steve")


def norman(name: str, obj: dict[str, Any]) -> Event:
    return parse_frame(json.dumps({"name": name, "data": obj}), "norman")


def pod(name: str, rv: str, ns: str = "default", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{ns}/{name}",
        "type": "pod",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
        **extra,
    }


# --- revisions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("9", "10", -1),  # numbers, not text: "9" > "10" as strings
        ("10", "9", 1),
        ("123456", "123456", 0),
        ("99999999999999999999999", "100000000000000000000000", -1),  # no length limit
        ("abc", "10", None),  # opaque: not comparable
        ("10", "", None),
        ("１２", "3", None),  # full-width digits are not a Kubernetes revision
    ],
)
def test_revisions_compare_as_integers_only_when_both_are_decimal(a: str, b: str, order: int | None) -> None:
    assert compare_revisions(a, b) == order


def test_the_later_revision_is_the_greater_or_the_last_seen_when_opaque() -> None:
    assert later_revision("9", "10") == "10"
    assert later_revision("10", "9") == "10"  # an older event (a re-delivery) does not move the resume point back
    assert later_revision(None, "5") == "5"
    assert later_revision("5", None) == "5"  # a missing revision never replaces one
    assert later_revision(None, None) is None
    assert later_revision("10", "opaque-b") == "opaque-b"  # not comparable: arrival order is the server's order
    assert later_revision("opaque-a", "3") == "3"


def test_an_event_comes_after_a_floor_unless_it_is_known_not_to() -> None:
    assert revision_after("11", "10")
    assert not revision_after("10", "10")
    assert not revision_after("9", "10")
    assert not revision_after(None, "10")
    assert revision_after("x", "10")  # cannot tell: deliver rather than skip


# --- one object and one event -------------------------------------------------------------------------


def test_object_fields_of_steve_and_norman_objects() -> None:
    obj = pod("web", "42", ns="shop")
    assert object_key(obj) == ("pod", "shop/web")
    assert object_revision(obj) == "42"
    assert object_namespace(obj) == "shop"
    n = {"id": "shop:web-1", "type": "pod", "namespaceId": "shop", "state": "running"}
    assert object_key(n) == ("pod", "shop:web-1")
    assert object_revision(n) is None
    assert object_namespace(n, "norman") == "shop"
    assert object_namespace({"id": "c", "type": "namespace", "metadata": {"name": "c"}}) is None
    assert object_key({"type": "pod"}) is None and object_key("nope") is None
    assert object_revision({"metadata": {"resourceVersion": 7}}) == "7"  # numbers become text


def test_removal_rules() -> None:
    assert removes(steve("resource.remove", pod("a", "5")))
    assert not removes(steve("resource.change", {**pod("a", "5"), "state": "removed"}))  # Steve: only remove
    # Norman: a change into a removed state removes (Rancher's UI does the same); Steve's states never do
    assert removes(norman("resource.change", {"id": "x", "type": "pod", "state": "removed"}))
    assert removes(norman("resource.change", {"id": "x", "type": "pod", "state": "purging"}))
    assert not removes(norman("resource.change", {"id": "x", "type": "pod", "state": "removing"}))
    assert removes(norman("resource.remove", {"id": "x", "type": "pod", "state": "active"}))
    assert is_removal("resource.change", "norman", "purged")
    assert not is_removal("resource.change", "steve", "purged")


def test_only_object_events_have_a_key() -> None:
    assert event_key(steve("resource.create", pod("a", "1"))) == ("pod", "default/a")
    assert event_key(parse_frame('{"name":"resource.start","resourceType":"pod"}', "steve")) is None
    assert event_key(parse_frame('{"name":"ping","data":{}}', "norman")) is None
    disguised = steve("resource.change", {"type": "pod", "message": "too old resource version"})
    assert disguised.info.get("disguised_error") and event_key(disguised) is None


def test_object_events_carry_what_a_frame_would() -> None:
    e = object_event("steve", "snapshot", "resource.create", pod("a", "17"))
    assert (e.kind, e.name, e.type, e.id, e.revision) == ("snapshot", "resource.create", "pod", "default/a", "17")
    n = object_event("norman", "resync", "resource.change", {"id": "p", "type": "project"}, resync="changed")
    assert (n.type, n.id, n.revision, n.info) == ("project", "p", None, {"resync": "changed"})
    assert n.is_resource


# --- the mirror ---------------------------------------------------------------------------------------


def test_mirror_applies_creates_changes_and_removes() -> None:
    m = ObjectMirror("steve")
    assert m.apply(steve("resource.create", pod("a", "1")))
    assert m.apply(steve("resource.change", pod("a", "2", spec={"x": 1})))
    assert m.apply(steve("resource.create", pod("b", "3")))
    assert not m.apply(parse_frame('{"name":"resource.start","resourceType":"pod"}', "steve"))
    assert m.get(("pod", "default/a"))["spec"] == {"x": 1}
    assert m.apply(steve("resource.remove", pod("a", "4")))
    assert set(m) == {("pod", "default/b")}
    m.apply(steve("resource.remove", pod("never-seen", "5")))  # removing what is not held is harmless
    assert len(m) == 1


def test_norman_double_delivery_and_removed_states() -> None:
    m = ObjectMirror("norman")
    dep = {"id": "deployment:ns:web", "type": "deployment", "state": "active", "baseType": "workload"}
    m.apply(norman("resource.change", dep))
    m.apply(norman("resource.change", dep))  # the same object through the workload stream: still one
    assert len(m) == 1
    m.apply(norman("resource.change", {**dep, "state": "removed"}))
    assert len(m) == 0


def test_a_merge_rule_plugs_in_per_type() -> None:
    def merge_counts(previous: Any, incoming: Any) -> Any:
        if previous is None:
            return incoming
        return {**incoming, "counts": {**previous["counts"], **incoming["counts"]}}

    m = ObjectMirror("steve", merge={"count": merge_counts})
    first = {"id": "count", "type": "count", "counts": {"pod": {"summary": {"count": 3}}, "secret": {}}}
    m.apply(steve("resource.change", first, resourceType="count"))
    m.apply(steve("resource.change", {"id": "count", "type": "count", "counts": {"pod": {"summary": {"count": 4}}}}))
    held = m.get(("count", "count"))
    assert held["counts"] == {"pod": {"summary": {"count": 4}}, "secret": {}}
    assert first["counts"]["pod"] == {"summary": {"count": 3}}  # the rule did not mutate the event's data
    m.apply(steve("resource.change", pod("a", "1")))  # other types are replaced whole
    m.apply(steve("resource.change", pod("a", "2")))
    assert m.get(("pod", "default/a")) == pod("a", "2")
    # a listing is whole: resync replaces the merged object
    events = m.resync({("count", "count"): {"id": "count", "type": "count", "counts": {}}}, ["count"])
    assert m.get(("count", "count"))["counts"] == {}
    assert [e.info.get("resync") for e in events if e.kind == "resync"] == ["changed"]


def test_snapshot_holds_the_listing_and_returns_one_create_per_object_in_key_order() -> None:
    m = ObjectMirror("steve")
    listed = listed_by_key([pod("b", "2"), pod("a", "1"), {"type": "pod"}])
    events = m.snapshot(listed)
    assert [(e.kind, e.name, e.id, e.revision) for e in events] == [
        ("snapshot", "resource.create", "default/a", "1"),
        ("snapshot", "resource.create", "default/b", "2"),
    ]
    assert set(m) == set(listed)


def test_resync_returns_appeared_changed_unchanged_vanished_between_markers() -> None:
    m = ObjectMirror("norman")
    for obj in ({"id": "a", "type": "pod", "v": 1}, {"id": "b", "type": "pod", "v": 1}, {"id": "c", "type": "pod"}):
        m.apply(norman("resource.change", obj))
    m.apply(norman("resource.change", {"id": "n1", "type": "node"}))  # not covered: never vanishes
    listed = listed_by_key(
        [{"id": "a", "type": "pod", "v": 1}, {"id": "b", "type": "pod", "v": 2}, {"id": "d", "type": "pod"}]
    )
    events = m.resync(listed, ["pod"])
    assert (events[0].name, events[0].info) == (RESYNC_STARTED, {"types": ["pod"]})
    assert [(e.name, e.id, e.info["resync"]) for e in events[1:-1]] == [
        ("resource.change", "a", "unchanged"),
        ("resource.change", "b", "changed"),
        ("resource.create", "d", "appeared"),
        ("resource.remove", "c", "vanished"),
    ]
    assert events[-1].name == RESYNC_FINISHED
    assert events[-1].info == {"types": ["pod"], "appeared": 1, "changed": 1, "unchanged": 1, "vanished": 1}
    assert set(m) == {("pod", "a"), ("pod", "b"), ("pod", "d"), ("node", "n1")}
    # a consumer that applies the returned events holds what the mirror holds
    consumer = ObjectMirror("norman", {("pod", "a"): {}, ("pod", "b"): {}, ("pod", "c"): {}, ("node", "n1"): {}})
    for e in events:
        consumer.apply(e)
    assert set(consumer) == set(m)


def test_resync_of_one_watch_only_vanishes_that_watchs_objects() -> None:
    m = ObjectMirror("steve")
    m.apply(steve("resource.create", pod("a", "1", ns="one")))
    m.apply(steve("resource.create", pod("b", "1", ns="two")))
    watch = {"resourceType": "pod", "namespace": "one"}
    events = m.resync({}, ["pod"], old_keys={("pod", "one/a")}, watch=watch)
    assert [(e.name, e.id) for e in events if e.kind == "resync"] == [("resource.remove", "one/a")]
    assert events[0].watch == watch and events[-1].watch == watch
    assert set(m) == {("pod", "two/b")}
