"""The sans-I/O core against real frames from public Rancher sources and Rancher's exact bytes."""

from __future__ import annotations

import base64
import json

import pytest

from rancherlab.protocol import (
    ANOMALY,
    LegacyFrameError,
    ProtocolError,
    Watch,
    auth,
    decode_frame,
    go_json,
    norman,
    parse_frame,
    parse_sent,
    steve,
)
from rancherlab.protocol.steve import client_request, decode_subscribe, subscription_key

from .conftest import SAMPLES, sample

# What each frame of frames-index.jsonl must become: (source file, seq) -> expectation.
EXPECTED = {
    ("steve-v1-watch-start-namespace-websocat-rancher-pr40238.txt", 1): ("sent", "subscribe", {"type": "pods"}),
    ("steve-v1-watch-start-namespace-websocat-rancher-pr40238.txt", 2): (
        "frame",
        "resource.start",
        {"type": "pods", "watch": {"resourceType": "pods", "namespace": "default"}},
    ),
    ("steve-v1-watch-start-stop-event-rancher-issue36684.txt", 1): (
        "sent",
        "subscribe",
        {"type": "event", "revision": "627295"},
    ),
    ("steve-v1-watch-start-stop-event-rancher-issue36684.txt", 2): (
        "frame",
        "resource.start",
        {"type": "event", "watch": {"resourceType": "event"}},
    ),
    ("steve-v1-watch-start-stop-event-rancher-issue36684.txt", 3): ("sent", "unsubscribe", {"type": "event"}),
    ("steve-v1-resource-changes-mode-session-apiserver-pr161.txt", 1): (
        "sent",
        "subscribe",
        {"type": "configmaps", "watch": {"resourceType": "configmaps", "mode": "resource.changes"}},
    ),
    ("steve-v1-resource-changes-mode-session-apiserver-pr161.txt", 2): (
        "frame",
        "resource.start",
        {"watch": {"resourceType": "configmaps", "mode": "resource.changes"}},
    ),
    ("steve-v1-resource-changes-mode-session-apiserver-pr161.txt", 3): (
        "frame",
        "resource.changes",
        {"type": "configmaps", "revision": None},
    ),
    ("steve-v1-resource-error-format-rancher-issue40131-block1.json", 1): ("frame", "resource.error", {"type": "node"}),
    ("steve-v1-resource-error-regressed-fragment-rancher-issue40131-block2.txt", 1): ("anomaly", "fragment", {}),
    ("steve-v1-resource-start-devtools-notation-rancher-issue40196.txt", 1): ("sent-invalid", "DevTools", {}),
    ("steve-v1-resource-start-devtools-notation-rancher-issue40196.txt", 2): ("anomaly", "DevTools", {}),
    ("steve-v1-counts-change-illustrative-dashboard-issue7566.txt", 1): ("anomaly", "cut short", {}),
    ("legacy-rancher1-cattle-resource-change-rancher-issue3523.json", 1): ("legacy", "Rancher 1.x", {}),
}


def test_every_indexed_frame_has_an_expectation(frames_index):
    assert {(f["source_file"], f["seq"]) for f in frames_index} == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0][:40]}#{k[1]}")
def test_indexed_frame(frames_index, key):
    frame = next(f for f in frames_index if (f["source_file"], f["seq"]) == key)
    kind, name, fields = EXPECTED[key]
    raw = frame["raw"]
    if frame["direction"] == "client->server":
        event = parse_sent(raw, "steve")
        if kind == "sent-invalid":
            assert event.name == "message" and name in event.info["error"] and event.raw == raw
            return
        assert (event.kind, event.name) == ("sent", name)
    elif kind in ("anomaly", "legacy"):
        error = LegacyFrameError if kind == "legacy" else ProtocolError
        with pytest.raises(error, match=name):
            decode_frame(raw, "steve")
        event = parse_frame(raw, "steve")  # the tolerant path keeps the text and says why
        assert (event.kind, event.name, event.raw) == ("marker", ANOMALY, raw)
        assert name in event.info["error"] and event.info["legacy"] is (kind == "legacy")
        return
    else:
        event = decode_frame(raw, "steve")
        assert (event.kind, event.name) == (kind, name)
        assert event.raw == raw
    for attr, value in fields.items():
        assert getattr(event, attr) == value, attr


def test_resource_error_keeps_its_text(frames_index):
    frame = next(f for f in frames_index if f["event_name"] == "resource.error")
    event = decode_frame(frame["raw"], "steve")
    assert "unable to decode an event from the watch stream" in event.info["error"]


def test_norman_frame_bytes_are_rancher_exact():
    obj = {"type": "pod", "id": "default:web-1", "name": "web-1", "message": "a<b & c>d", "links": {"self": "x"}}
    text = norman.change_frame(obj)
    assert text == (
        '{"name":"resource.change","data":{"id":"default:web-1","links":{"self":"x"},'
        '"message":"a\\u003cb \\u0026 c\\u003ed","name":"web-1","type":"pod"}\n}'
    )
    assert norman.remove_frame(obj).startswith('{"name":"resource.remove","data":{')
    event = decode_frame(text, "norman")
    assert (event.name, event.type, event.id, event.data["message"]) == (
        "resource.change",
        "pod",
        "default:web-1",
        "a<b & c>d",
    )
    assert decode_frame(norman.PING, "norman").is_ping


@pytest.mark.parametrize(
    "name,loader",
    [
        ("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json", lambda d: d["data"]),
        ("norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json", lambda d: d["data"]),
        ("norman-v3-users-collection-qa-server-dashboard-blueprint.json", lambda d: d["data"]),
        ("norman-v3-workload-deployment-audit-response-rancher2.0-docs.json", lambda d: [d["responseBody"]]),
    ],
)
def test_real_norman_objects_round_trip_through_frames(name, loader):
    for obj in loader(sample(name)):
        event = decode_frame(norman.change_frame(obj), "norman")
        assert event.data == obj and (event.type, event.id) == (obj["type"], obj["id"])


def test_real_steve_objects_round_trip_through_frames():
    for obj in sample("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")["data"]:
        rv = obj["metadata"]["resourceVersion"]
        text = steve.encode_event("resource.change", data=obj, revision=rv, echo={"resourceType": "pod"})
        assert text.startswith('{"name":"resource.change","resourceType":"pod","revision":"%s","data":{"id":' % rv)
        assert text.endswith("}\n")
        event = decode_frame(text, "steve")
        assert (event.type, event.id, event.revision, event.data) == ("pod", obj["id"], rv, obj)


def test_steve_start_matches_the_captured_bytes(frames_index):
    captured = next(f["raw"] for f in frames_index if f["source_file"].endswith("pr40238.txt") and f["seq"] == 2)
    echo = {"namespace": "default", "resourceType": "pods", "id": "", "selector": "", "mode": ""}
    assert steve.encode_event("resource.start", data=steve.SUBSCRIBE_DATA, echo=echo) == captured + "\n"


def test_steve_ping_carries_the_version():
    text = steve.ping("v2.12.0")
    assert text == '{"name":"ping","data":{"type":"subscribe","links":{},"version":"v2.12.0"}}\n'
    assert decode_frame(text, "steve").info == {"version": "v2.12.0"}


def test_disguised_error_is_not_a_resource():
    raw = json.dumps({"name": "resource.change", "data": {"type": "x", "links": {}, "metadata": {}, "message": "boom"}})
    event = decode_frame(raw, "steve")
    assert event.info["error"] == "boom" and event.id is None


@pytest.mark.parametrize(
    "raw,message",
    [
        ("[]", "not an object"),
        ('{"data":{}}', "no event name"),
        ('{"name":"resource.change","data":null}', "no resource object"),
        ('{"name":"resource.change","data":{"id":"x"}}', 'no "type"'),
        (b"\xff\xfe", "not UTF-8"),
        ('{"name":"resource.change","resourceType":"pod","data":{"type":"pod"}}', "dialect='steve'"),
    ],
)
def test_garbage_norman_frames_get_clear_errors(raw, message):
    with pytest.raises(ProtocolError, match=message):
        decode_frame(raw, "norman")
    assert parse_frame(raw, "norman").name == ANOMALY


def test_watch_key_and_messages():
    w = Watch("pod", namespace="default", mode="changes", debounce_ms=4000)
    assert w.key == "pod/default///resource.changes/4000"
    assert json.loads(w.subscribe_message("123")) == {
        "resourceType": "pod",
        "namespace": "default",
        "mode": "resource.changes",
        "debounceMs": 4000,
        "resourceVersion": "123",
    }
    assert json.loads(w.stop_message())["stop"] is True and "resourceVersion" not in w.stop_message()
    assert Watch("pod").subscribe_message() == '{"resourceType":"pod"}'
    assert w.matches({"resourceType": "pod", "namespace": "default", "mode": "resource.changes", "debounceMs": 4000})
    assert not Watch("pod").matches({"resourceType": "pod", "namespace": "default"})
    assert subscription_key({"resourceType": "pod", "mode": ""}) == Watch("pod").key
    with pytest.raises(ValueError, match="debounce_ms"):
        Watch("pod", debounce_ms=10)
    with pytest.raises(ValueError, match="resource type"):
        Watch("")


def test_decode_subscribe_has_go_semantics():
    sub = decode_subscribe('{"resourceType":"pods","resourceVersion":"5","unknown":1}')
    assert (sub.resource_type, sub.resource_version, sub.key) == ("pods", "5", "pods/////0")
    assert decode_subscribe('{"resourceType":"pod","stop":true}').stop
    for bad, text in [("nope", "invalid character"), ('{"debounceMs":"x"}', "Subscribe.debounceMs"), ("[1]", "array")]:
        with pytest.raises(ValueError, match=text):
            decode_subscribe(bad)


def test_client_request_follows_apiserver_rules():
    active = {"pod/////0"}
    assert client_request('{"resourceType":"node"}', active).action == "start"
    assert client_request('{"resourceType":"pod","resourceVersion":"9"}', active).action == "ignore"  # already watched
    stop = client_request('{"resourceType":"pod","stop":true}', active)
    assert (stop.action, stop.sub.key) == ("stop", "pod/////0")
    assert steve.stop_event(stop.sub.echo()) == steve.encode_event(
        "resource.stop", data=steve.SUBSCRIBE_DATA, echo=stop.sub.echo()
    )
    assert client_request('{"resourceType":"node","stop":true}', active).action == "ignore"
    bad = client_request("nope", active)
    assert bad.action == "invalid" and decode_frame(bad.reply, "steve").name == "resource.error"


def test_auth_reads_credentials_like_rancher():
    token = "token-abcde:s3cret"
    basic = base64.urlsafe_b64encode(token.encode()).decode()
    assert auth.token_from_request(f"Bearer {token}", None) == token
    assert auth.token_from_request(f"Basic {basic}", None) == token
    assert auth.token_from_request(None, f"R_SESS={token}; other=1") == token
    # any Authorization header, even an undecodable one, stops the cookie from being read
    assert auth.token_from_request("Basic !!!", f"R_SESS={token}") is None
    assert auth.token_from_request(None, None) is None


def test_origin_checks():
    browser = {"Connection": "keep-alive, Upgrade", "User-Agent": "Mozilla/5.0", "Origin": "https://evil.example"}
    assert auth.browser_origin_rejected(browser, "rancher.example")
    assert not auth.browser_origin_rejected({**browser, "Origin": "https://rancher.example"}, "rancher.example")
    assert not auth.browser_origin_rejected({**browser, "User-Agent": "python"}, "rancher.example")
    assert auth.gorilla_origin_rejected("https://evil.example", "rancher.example")
    assert not auth.gorilla_origin_rejected("https://Rancher.Example", "rancher.example")
    assert not auth.gorilla_origin_rejected(None, "rancher.example")


def test_go_json_escapes_like_go():
    assert go_json({"b": "<&>\u2028", "a": [1, "é"]}) == '{"a":[1,"é"],"b":"\\u003c\\u0026\\u003e\\u2028"}'


def test_samples_folder_is_there():
    assert (SAMPLES / "frames-index.jsonl").exists(), "the samples are kept in tests/fixtures"
