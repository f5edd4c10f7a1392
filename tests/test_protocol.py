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
from rancherlab.protocol.frames import MAX_NESTING, OVERSIZE_KEEP, too_deep
from rancherlab.protocol.steve import client_request, decode_subscribe, subscription_key

from .conftest import SAMPLES, SECRET_TOKEN, sample

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
        assert text.startswith(f'{{"name":"resource.change","resourceType":"pod","revision":"{rv}","data":{{"id":')
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


# --- hostile frames: no input from the wire ends a stream (each becomes an anomaly that keeps the text) -----


def _deep_norman(depth: int) -> str:
    """A Norman pod change whose object holds `depth` nested arrays (the frame itself nests depth + 2)."""
    return '{"name":"resource.change","data":{"id":"d","type":"pod","x":' + "[" * depth + "]" * depth + "}\n}"


def _deep_steve(depth: int) -> str:
    inner = '{"a":' * depth + "{}" + "}" * depth
    return (
        '{"name":"resource.change","resourceType":"pod","revision":"7","data":{"id":"ns/d","type":"pod","x":'
        + inner
        + "}}"
    )


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("dialect", ["norman", "steve"])
def test_deep_nesting_is_an_anomaly_not_a_crash(dialect, depth):
    raw = _deep_norman(depth) if dialect == "norman" else _deep_steve(depth)
    with pytest.raises(ProtocolError, match=f"nested more than {MAX_NESTING} levels"):
        decode_frame(raw, dialect)
    for given in (raw, raw.encode()):
        event = parse_frame(given, dialect)
        assert (event.kind, event.name, event.raw) == ("marker", ANOMALY, raw)
        assert "nested more than" in event.info["error"] and event.info["legacy"] is False
    sent = parse_sent(raw, dialect)
    assert sent.name == "message" and "nested" in sent.info["error"] and sent.raw == raw


def test_nesting_limit_is_exact_and_ignores_brackets_inside_strings():
    # the frame's object is level 1, data level 2, so MAX_NESTING - 2 arrays inside data reach the limit exactly
    at_limit = decode_frame(_deep_norman(MAX_NESTING - 2), "norman")
    assert at_limit.name == "resource.change" and at_limit.id == "d"
    with pytest.raises(ProtocolError, match="nested more than"):
        decode_frame(_deep_norman(MAX_NESTING - 1), "norman")
    brackets = "[{" * 5000 + '"\\' + "}]" * 10  # escapes in the string too
    event = decode_frame(norman.change_frame({"type": "pod", "id": "s", "note": brackets}), "norman")
    assert event.data["note"] == brackets
    shallow, deep = {"a": [{"b": "[[[[{{{{"}]}, {"a": [[{"b": "x"}]]}
    assert not too_deep(shallow, json.dumps(shallow), limit=3) and too_deep(deep, json.dumps(deep), limit=3)
    for limit in (1, 5, MAX_NESTING, 300):  # orjson's encoder decides below its own limit, a walk above it
        for depth in (limit - 1, limit, limit + 1):
            value: object = {"leaf": "[[[["}
            for _ in range(depth - 1):
                value = [value]
            assert too_deep(value, limit=limit) is (depth > limit), (limit, depth)
    with_surrogate = [[{"s": "\ud800"}]]  # orjson cannot encode it: the walk decides
    assert too_deep(with_surrogate, limit=2) and not too_deep(with_surrogate, limit=3)


def test_an_object_at_the_nesting_limit_survives_every_later_step():
    """What the parser accepts, redaction, Go-style encoding, the recording codec and flattening all handle."""
    from rancherlab.analysis._flatten import leaves
    from rancherlab.recording import decode_event, encode_event
    from rancherlab.redaction import Redactor

    steve_frame = _deep_steve(MAX_NESTING - 3)
    event = decode_frame(steve_frame, "steve")
    assert event.name == "resource.change" and event.revision == "7"
    assert json.loads(go_json(event.data)) == event.data
    redacted = Redactor(credentials=(SECRET_TOKEN,)).redact(event)
    assert redacted.data == event.data and redacted.raw == event.raw
    line = encode_event(event.stamped(seq=1, conn=1, t=0.0, ts=None))
    assert decode_event(json.loads(line), "steve").data == event.data
    assert len(list(leaves(event.data))) == 3


@pytest.mark.parametrize(
    "raw,dialect,why",
    [
        ('{"name":"resource.change","data":{"id":"n\x00ul","type":"pod"}\n}', "norman", "NUL byte"),
        (b'{"name":"resource.change","data":{"id":"\xff\xfe","type":"pod"}\n}', "norman", "not UTF-8"),
        (b"\x00\x01\x02\xff binary", "steve", "not UTF-8"),
        ("this is not json {{{", "norman", "not JSON"),
        ("", "steve", "not JSON"),
        ("1e999", "norman", "not an object"),
        ('{"name":1,"data":{}}', "steve", "no event name"),
        ('{"name":"resource.change","data":[]}', "steve", "no resource object"),
        (
            '{"name":"resource.change","resourceType":"pod","revision":"1","data":{"id":"a","type":"pod"}}',
            "norman",
            "dialect='steve'",
        ),
        ('{"name":"resource.change","data":{"baseType":"pod","id":"a:b","type":"pod"}\n}', "steve", "dialect='norman'"),
        ('{"name":"resource.change","data":{"type":"pod"},"resourceId":"1i5"}', "norman", "Rancher 1.x"),
    ],
)
def test_hostile_frames_become_anomalies_that_keep_the_text(raw, dialect, why):
    event = parse_frame(raw, dialect)
    assert (event.kind, event.name) == ("marker", ANOMALY)
    assert why in event.info["error"]
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")
    assert event.raw == text
    if isinstance(raw, bytes) and b"\xff" in raw:
        assert "\\xff" in event.raw  # every byte is still readable


def test_escaped_nul_binary_frames_and_unknown_names_are_frames():
    escaped = decode_frame('{"name":"resource.change","data":{"id":"n\\u0000ul","type":"pod"}\n}', "norman")
    assert escaped.id == "n\x00ul"
    text = norman.change_frame({"type": "pod", "id": "default:web"})
    binary = parse_frame(text.encode(), "norman")  # a binary frame holding Rancher's text: read the same way
    assert (binary.kind, binary.name, binary.id, binary.raw) == ("frame", "resource.change", "default:web", text)
    unknown = parse_frame('{"name":"resource.frobnicate","data":{"id":"u","type":"pod"}\n}', "norman")
    assert (unknown.kind, unknown.name, unknown.is_resource) == ("frame", "resource.frobnicate", False)
    newer = parse_frame('{"name":"resource.later","resourceType":"pod","data":{}}', "steve")
    assert (newer.kind, newer.name, newer.type) == ("frame", "resource.later", "pod")


def test_a_frame_over_the_size_limit_is_an_anomaly_with_its_head():
    big = norman.change_frame({"type": "pod", "id": "big", "blob": "y" * 200_000})
    event = parse_frame(big, "norman", max_bytes=100_000)
    assert (event.kind, event.name) == ("marker", ANOMALY)
    assert event.info["bytes"] == len(big.encode()) and event.info["truncated"] is True
    assert "max_frame_bytes" in event.info["error"] and big.startswith(event.raw)
    assert event.raw == '{"name":"resource.change","data":{"blob":'  # not a part of the string the cut would split
    many = norman.change_frame({"type": "pod", "id": "many", "items": [f"{i:0100d}" for i in range(3000)]})
    head = parse_frame(many, "norman", max_bytes=100_000).raw
    assert many.startswith(head) and OVERSIZE_KEEP - 110 < len(head) <= OVERSIZE_KEEP and head.endswith(",")
    secret = {"type": "secret", "id": "s", "pad": "p" * (OVERSIZE_KEEP - 60), "token": SECRET_TOKEN}
    cut = parse_frame(norman.change_frame(secret), "norman", max_bytes=1000)
    assert SECRET_TOKEN[:8] not in cut.raw  # the string the cut would split is left out whole
    assert parse_frame(big.encode(), "norman", max_bytes=100_000).info["bytes"] == len(big.encode())
    assert parse_frame(big, "norman", max_bytes=len(big)).name == "resource.change"
    multibyte = norman.change_frame({"type": "pod", "id": "é" * 10})  # the limit counts UTF-8 bytes, not characters
    assert parse_frame(multibyte, "norman", max_bytes=len(multibyte)).name == ANOMALY


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000,
        "{" * 50_000 + '"',
        '{"name":"resource.change","data":' + '{"a":' * 2000 + "1" + "}" * 2000 + "}",
        b"\xed\xa0\x80",
        '"\\ud800"',
        '{"name":"ping","data":NaN}',
        '{"name":"resource.remove","data":{"type":"pod","id":' + "9" * 5000 + "}}",
    ],
    ids=["open-arrays", "open-objects", "deep-2000", "surrogate-bytes", "lone-surrogate", "nan", "huge-int"],
)
@pytest.mark.parametrize("dialect", ["norman", "steve"])
def test_parse_frame_never_raises(raw, dialect):
    event = parse_frame(raw, dialect)
    assert event.kind in ("frame", "marker") and event.raw is not None
    assert isinstance(parse_sent(raw, dialect).raw, str)


def test_one_json_codec_never_overflows_the_stack():
    from rancherlab.protocol import _json

    deepest: object = []
    for _ in range(_json.ORJSON_MAX_DEPTH - 1):
        deepest = [deepest]
    assert _json.orjson.dumps(deepest)  # the limit deeper_than relies on: exactly this deep encodes,
    with pytest.raises(_json.orjson.JSONEncodeError, match="ecursion"):
        _json.orjson.dumps([deepest])  # one level more does not
    for depth in (2_000, 100_000):  # orjson stops at 1,024 levels; the codec must not then recurse in Python
        text = "[" * depth + "]" * depth
        for given in (text, text.encode()):
            with pytest.raises(ValueError):
                _json.loads(given)
    assert _json.loads('"\\ud800"') == "\ud800"  # valid JSON orjson refuses
    with pytest.raises(ValueError):
        _json.loads('{"a":NaN}')
    assert _json.loads(_json.dumps({"n": 10**30, "s": "\ud800"})) == {"n": 10**30, "s": "\ud800"}
    deep: list[object] = []
    for _ in range(300):  # deeper than orjson writes: the standard library does
        deep = [deep]
    assert _json.loads(_json.dumps(deep)) == deep
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        _json.dumps(deep)


def test_a_hostile_client_message_is_an_invalid_request_not_a_crash():
    for raw in ("[" * 100_000, '{"resourceType":"pod","x":' + "[" * 100_000 + "]" * 100_000 + "}", b"\xff"):
        req = client_request(raw, set())
        assert req.action == "invalid" and decode_frame(req.reply, "steve").name == "resource.error"
