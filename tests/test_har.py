"""HAR import: Chrome/mitmproxy captures of Rancher subscribe sockets become recordings, without credentials.

The fixture `fixtures/rancher-two-sockets.har` follows Chrome DevTools' export layout and is built by
`build_har()` from the real objects in shared/rancher-ws-samples; regenerate it with
`python -m tests.test_har` (a test checks that the committed file is what the builder makes).
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rancherlab.cli import main
from rancherlab.har import HarError, import_har
from rancherlab.protocol import CONNECTED, Watch, norman, parse_frame, steve
from rancherlab.recording import RecordingExistsError, read_recording
from rancherlab.redaction import Redactor
from rancherlab.replay import replay

from .conftest import SECRET_TOKEN, sample

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "rancher-two-sockets.har"
HOST = "rancher.example.com"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
COOKIE_TOKEN = "token-c00k1:Ck9CookieSessionSecretValue0123456789abcdefghijkl"
CSRF = "3f2a9c0e71b4d85a"
SECRET_IN_FRAME = "U3VwZXJTZWNyZXREYXRhVmFsdWU="  # base64 of a secret value inside a Steve secret


def _headers(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs]


def _ws_entry(
    path: str,
    sock_id: int,
    started: float,
    messages: list[tuple[str, float, str]],
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    url = f"wss://{HOST}{path}?sockId={sock_id}"
    return {
        "_fromCache": None,
        "_initiator": {"type": "script"},
        "_priority": "Low",
        "_resourceType": "websocket",
        "cache": {},
        "connection": "443",
        "pageref": "page_1",
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": _headers(
                [
                    ("Host", HOST),
                    ("Connection", "Upgrade"),
                    ("Pragma", "no-cache"),
                    ("Upgrade", "websocket"),
                    ("Origin", f"https://{HOST}"),
                    ("Sec-WebSocket-Version", "13"),
                    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36"),
                    ("Accept-Encoding", "gzip, deflate, br, zstd"),
                    ("Accept-Language", "en-US,en;q=0.9"),
                    ("Cookie", f"R_PCS=light; CSRF={CSRF}; R_SESS={COOKIE_TOKEN}"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                    *extra_headers,
                ]
            ),
            "queryString": [{"name": "sockId", "value": str(sock_id)}],
            "cookies": [
                {
                    "name": "R_PCS",
                    "value": "light",
                    "path": "/",
                    "domain": HOST,
                    "expires": "2027-03-01T12:00:00.000Z",
                    "httpOnly": False,
                    "secure": True,
                    "sameSite": "Strict",
                },
                {
                    "name": "CSRF",
                    "value": CSRF,
                    "path": "/",
                    "domain": HOST,
                    "expires": "2027-03-01T12:00:00.000Z",
                    "httpOnly": False,
                    "secure": True,
                    "sameSite": "Strict",
                },
                {
                    "name": "R_SESS",
                    "value": COOKIE_TOKEN,
                    "path": "/",
                    "domain": HOST,
                    "expires": "2026-03-02T04:00:00.000Z",
                    "httpOnly": True,
                    "secure": True,
                    "sameSite": "Lax",
                },
            ],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": 101,
            "statusText": "Switching Protocols",
            "httpVersion": "HTTP/1.1",
            "headers": _headers(
                [
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
                    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=15"),
                    ("Upgrade", "websocket"),
                ]
            ),
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
            "_transferSize": 0,
            "_error": None,
            "_fetchedViaServiceWorker": False,
        },
        "serverIPAddress": "203.0.113.10",
        "startedDateTime": datetime.fromtimestamp(started, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "time": 41.7,
        "timings": {
            "blocked": 1.2,
            "dns": -1,
            "ssl": -1,
            "connect": -1,
            "send": 0,
            "wait": 40.5,
            "receive": 0,
            "_blocked_queueing": 0.9,
        },
        "_webSocketMessages": [
            {"type": kind, "time": round(when, 6), "opcode": 1, "data": data} for kind, when, data in messages
        ],
    }


def _xhr_entry() -> dict[str, Any]:
    return {
        "_initiator": {"type": "script"},
        "_priority": "High",
        "_resourceType": "fetch",
        "cache": {},
        "connection": "443",
        "pageref": "page_1",
        "request": {
            "method": "GET",
            "url": f"https://{HOST}/v3/users?me=true",
            "httpVersion": "http/2.0",
            "headers": _headers(
                [
                    (":authority", HOST),
                    ("accept", "application/json"),
                    ("cookie", f"R_SESS={COOKIE_TOKEN}"),
                    ("x-api-csrf", CSRF),
                ]
            ),
            "queryString": [{"name": "me", "value": "true"}],
            "cookies": [
                {
                    "name": "R_SESS",
                    "value": COOKIE_TOKEN,
                    "path": "/",
                    "domain": HOST,
                    "expires": None,
                    "httpOnly": True,
                    "secure": True,
                }
            ],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": 200,
            "statusText": "",
            "httpVersion": "http/2.0",
            "headers": _headers([("content-type", "application/json")]),
            "cookies": [],
            "content": {"size": 27, "mimeType": "application/json", "text": '{"type":"collection","data":[]}'},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "_transferSize": 120,
            "_error": None,
        },
        "serverIPAddress": "203.0.113.10",
        "startedDateTime": "2026-03-01T11:59:59.500Z",
        "time": 12.3,
        "timings": {"blocked": 0.5, "dns": -1, "ssl": -1, "connect": -1, "send": 0.1, "wait": 11.5, "receive": 0.2},
    }


def norman_messages() -> list[tuple[str, float, str]]:
    deployment = sample("norman-v3-workload-deployment-audit-response-rancher2.0-docs.json")["responseBody"]
    deployment = {**deployment, "projectId": "c-abc12:p-xyz34"}
    config = {
        "id": "default:app-config",
        "type": "configMap",
        "baseType": "configMap",
        "namespaceId": "default",
        "projectId": "c-abc12:p-xyz34",
        "data": {"note": f"ask ops; the session was {COOKIE_TOKEN}"},
    }
    basic = {
        "id": "default:registry",
        "type": "namespacedBasicAuth",
        "baseType": "namespacedSecret",
        "namespaceId": "default",
        "projectId": "c-abc12:p-xyz34",
        "username": "deploy",
        "password": "Hunter2-basic-pw",
    }
    t = T0 + 0.05
    return [
        ("receive", t + 0.2, norman.change_frame(deployment)),
        ("receive", t + 1.1, norman.change_frame(config)),
        ("receive", t + 2.0, norman.change_frame(basic)),
        ("receive", t + 5.0, norman.PING),
        ("receive", t + 7.5, norman.remove_frame(deployment)),
        ("receive", t + 10.0, norman.PING),
    ]


def steve_messages() -> list[tuple[str, float, str]]:
    pod = copy.deepcopy(sample("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")["data"][0])
    secret = copy.deepcopy(sample("steve-v1-secrets-collection-rancher-integration-testdata.json")["data"][0])
    secret["data"] = {"password": SECRET_IN_FRAME}
    pods, secrets = Watch("pod"), Watch("secret", namespace="test-ns-1")
    t = T0 + 0.3
    return [
        ("send", t + 0.01, pods.subscribe_message()),
        ("send", t + 0.02, secrets.subscribe_message("100")),
        (
            "receive",
            t + 0.05,
            steve.encode_event("resource.start", data=steve.SUBSCRIBE_DATA, echo={"resourceType": "pod"}),
        ),
        (
            "receive",
            t + 0.06,
            steve.encode_event(
                "resource.start", data=steve.SUBSCRIBE_DATA, echo={"resourceType": "secret", "namespace": "test-ns-1"}
            ),
        ),
        (
            "receive",
            t + 1.5,
            steve.encode_event(
                "resource.change", data=pod, revision=pod["metadata"]["resourceVersion"], echo={"resourceType": "pod"}
            ),
        ),
        (
            "receive",
            t + 2.5,
            steve.encode_event(
                "resource.change",
                data=secret,
                revision="1001",
                echo={"resourceType": "secret", "namespace": "test-ns-1"},
            ),
        ),
        ("receive", t + 30.0, steve.ping("v2.9.2")),
        ("send", t + 31.0, secrets.stop_message()),
        (
            "receive",
            t + 31.05,
            steve.encode_event(
                "resource.stop", data=steve.SUBSCRIBE_DATA, echo={"resourceType": "secret", "namespace": "test-ns-1"}
            ),
        ),
    ]


def build_har() -> dict[str, Any]:
    entries = [
        _xhr_entry(),
        _ws_entry(
            "/v3/projects/c-abc12:p-xyz34/subscribe",
            2,
            T0,
            norman_messages(),
            (("Authorization", f"Bearer {SECRET_TOKEN}"),),
        ),
        _ws_entry("/k8s/clusters/c-abc12/v1/subscribe", 3, T0 + 0.25, steve_messages()),
        # A kubectl shell: a WebSocket, but not a subscribe socket.
        _ws_entry(
            "/k8s/clusters/c-abc12/api/v1/namespaces/cattle-system/pods/dashboard-shell-x/exec",
            4,
            T0 + 9,
            [("send", T0 + 9.1, "0bHM="), ("receive", T0 + 9.2, "1Li4=")],
        ),
    ]
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [
                {
                    "startedDateTime": "2026-03-01T11:59:59.000Z",
                    "id": "page_1",
                    "title": f"https://{HOST}/dashboard/c/c-abc12/explorer",
                    "pageTimings": {"onContentLoad": 812.4, "onLoad": 1290.1},
                }
            ],
            "entries": entries,
        }
    }


def har_text() -> str:
    return json.dumps(build_har(), indent=1, ensure_ascii=False) + "\n"


def credential_forms() -> list[bytes]:
    values = [
        SECRET_TOKEN,
        SECRET_TOKEN.split(":")[1],
        COOKIE_TOKEN,
        COOKIE_TOKEN.split(":")[1],
        CSRF,
        base64.b64encode(SECRET_TOKEN.encode()).decode(),
        f"Bearer {SECRET_TOKEN}",
    ]
    return [v.encode() for v in values]


# --- tests ------------------------------------------------------------------------------------------


def test_fixture_is_what_the_builder_makes() -> None:
    assert FIXTURE.read_text() == har_text(), "regenerate with: python -m tests.test_har"
    assert FIXTURE.stat().st_size < 50_000


def test_two_subscribe_sockets_become_two_recordings(tmp_path: Path) -> None:
    out = tmp_path / "capture"
    written = import_har(FIXTURE, out)
    assert [p.name for p in written] == ["project-c-abc12-p-xyz34.jsonl", "steve-c-abc12.jsonl"]
    assert sorted(out.iterdir()) == written
    norman_rec, steve_rec = (read_recording(p) for p in written)

    h = norman_rec.header
    assert (h.dialect, h.scope, h.server, h.endpoint) == (
        "norman",
        "project:c-abc12:p-xyz34",
        f"https://{HOST}:443",
        "/v3/projects/c-abc12:p-xyz34/subscribe",
    )
    assert h.redaction["enabled"] is True and h.redaction["credentials"] >= 3 and "WebInspector" in (h.note or "")
    assert h.started == datetime.fromtimestamp(T0, UTC)
    events = list(norman_rec)
    assert events[0].kind == "marker" and events[0].name == CONNECTED and events[0].t == 0.0
    assert [e.name for e in events[1:]] == ["resource.change"] * 3 + ["ping", "resource.remove", "ping"]
    assert [e.seq for e in events] == list(range(1, 8)) and all(e.conn == 0 for e in events)
    assert events[1].type == "deployment" and events[1].t == pytest.approx(0.25)
    assert events[1] == parse_frame(norman_messages()[0][2], "norman").stamped(
        seq=2, conn=0, t=events[1].t, ts=events[1].ts
    )
    assert events[3].data["password"].startswith("<redacted len=16 ")

    s = steve_rec.header
    assert (s.dialect, s.scope, s.endpoint) == ("steve", "steve:c-abc12", "/k8s/clusters/c-abc12/v1/subscribe")
    sevents = list(steve_rec)
    assert [e.kind for e in sevents[1:3]] == ["sent", "sent"] and sevents[2].revision == "100"
    assert sevents[-2].name == "unsubscribe" and sevents[-1].name == "resource.stop"
    assert sevents[5].type == "pod" and sevents[5].raw == steve_messages()[4][2]  # untouched: byte for byte
    assert sevents[6].data["data"]["password"].startswith("<redacted")
    assert sevents[0].ts == datetime.fromtimestamp(T0 + 0.25, UTC)
    assert list(replay(written[1], speed=float("inf"))) == sevents


def test_no_credential_or_secret_reaches_the_recordings(tmp_path: Path) -> None:
    har = FIXTURE.read_bytes()
    for value in (SECRET_TOKEN, COOKIE_TOKEN, CSRF, SECRET_IN_FRAME, "Hunter2-basic-pw"):
        assert value.encode() in har
    for path in import_har(FIXTURE, tmp_path / "out"):
        data = path.read_bytes()
        for form in [*credential_forms(), SECRET_IN_FRAME.encode(), b"Hunter2-basic-pw"]:
            assert form not in data, f"{form[:12]!r} leaked into {path.name}"
        assert b"Authorization" not in data and b"Cookie" not in data and b"sockId" not in data


URL_QUERY_TOKEN = "token-qu3ry:Query-param-S3cret-value-0123456789-abcdefgh"  # hyphens: not a real key
URL_USER_SECRET = "UserInfoS3cretValue0123456789abcdefghijkl"


def test_credentials_in_request_urls_are_redacted_too(tmp_path: Path) -> None:
    # A socket whose URL carried `user:password@` and `?token=` (a copied URL, a proxy that rewrote it), and
    # frames that echo both: neither reaches the recording, the header included.
    har = build_har()
    entry = har["log"]["entries"][1]
    request = entry["request"]
    request["url"] = (
        f"wss://token-us3r:{URL_USER_SECRET}@{HOST}/v3/projects/c-abc12:p-xyz34/subscribe"
        f"?sockId=2&token={URL_QUERY_TOKEN.replace(':', '%3A')}"
    )
    request["queryString"].append({"name": "token", "value": URL_QUERY_TOKEN.replace(":", "%3A")})
    echo = {
        "id": "default:echo",
        "type": "configMap",
        "baseType": "configMap",
        "namespaceId": "default",
        "projectId": "c-abc12:p-xyz34",
        "data": {"seen": f"{URL_QUERY_TOKEN} and {URL_USER_SECRET}"},
    }
    entry["_webSocketMessages"].append(
        {"type": "receive", "time": T0 + 5, "opcode": 1, "data": norman.change_frame(echo)}
    )
    source = tmp_path / "urls.har"
    source.write_text(json.dumps(har))
    written = import_har(source, tmp_path / "out")
    data = b"".join(path.read_bytes() for path in written)
    assert b"default:echo" in data
    for value in (URL_QUERY_TOKEN, URL_QUERY_TOKEN.split(":")[1], URL_USER_SECRET):
        assert value.encode() not in data


def test_one_socket_goes_to_the_path_given(tmp_path: Path) -> None:
    har = build_har()
    har["log"]["entries"] = [e for e in har["log"]["entries"] if "/v1/subscribe" not in e["request"]["url"]]
    src = tmp_path / "one.har"
    src.write_text(json.dumps(har))
    written = import_har(src, tmp_path / "one.jsonl.gz")
    assert written == [tmp_path / "one.jsonl.gz"]
    assert len(list(read_recording(written[0]))) == 7
    with pytest.raises(RecordingExistsError):
        import_har(src, tmp_path / "one.jsonl.gz")
    folder = tmp_path / "existing"
    folder.mkdir()
    assert import_har(src, folder) == [folder / "project-c-abc12-p-xyz34.jsonl"]


def test_mitmproxy_layout_and_binary_messages(tmp_path: Path) -> None:
    har = build_har()
    har["log"]["creator"] = {"name": "mitmproxy", "version": "11.0.0", "comment": ""}
    for entry in har["log"]["entries"]:
        for key in [k for k in entry if k.startswith("_") and k != "_webSocketMessages"]:
            del entry[key]
    messages = har["log"]["entries"][2]["_webSocketMessages"]
    messages[6] = {**messages[6], "opcode": 2, "data": base64.b64encode(messages[6]["data"].encode()).decode()}
    src = tmp_path / "mitm.har"
    src.write_text(json.dumps(har))
    written = import_har(src, tmp_path / "out", redactor=Redactor(enabled=False))
    events = list(read_recording(written[1]))
    assert events[7].is_ping and events[7].info == {"version": "v2.9.2"}
    assert read_recording(written[0]).header.redaction["enabled"] is False
    assert "mitmproxy 11.0.0" in (read_recording(written[0]).header.note or "")
    assert events[6].raw == steve_messages()[5][2]  # redaction off: the secret frame is kept as sent


def test_har_without_a_subscribe_socket(tmp_path: Path) -> None:
    har = build_har()
    har["log"]["entries"] = [har["log"]["entries"][0], har["log"]["entries"][3]]
    src = tmp_path / "none.har"
    src.write_text(json.dumps(har))
    with pytest.raises(HarError, match="no Rancher subscribe WebSocket .*1 WebSocket"):
        import_har(src, tmp_path / "out.jsonl")
    (tmp_path / "bad.har").write_text("{not json")
    with pytest.raises(HarError, match="not a readable HAR"):
        import_har(tmp_path / "bad.har", tmp_path / "out.jsonl")
    (tmp_path / "list.har").write_text("[]")
    with pytest.raises(HarError, match="log.entries"):
        import_har(tmp_path / "list.har", tmp_path / "out.jsonl")
    with pytest.raises(FileNotFoundError):
        import_har(tmp_path / "missing.har", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec"
    assert main(["import-har", str(FIXTURE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == ["project-c-abc12-p-xyz34.jsonl", "steve-c-abc12.jsonl"]
    assert (
        main(["import-har", str(FIXTURE), "--out", str(out)]) == 2
    )  # an existing output is a usage error (--overwrite), as in record
    assert "--overwrite" in capsys.readouterr().err
    assert main(["import-har", str(FIXTURE), "--out", str(out), "--overwrite"]) == 0
    assert main(["import-har", str(tmp_path / "missing.har"), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert "no such file" in err and SECRET_TOKEN not in err


if __name__ == "__main__":  # pragma: no cover
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(har_text())
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
