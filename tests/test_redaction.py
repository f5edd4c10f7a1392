"""Redaction: no secret value or caller credential survives, and raw text stays byte-faithful otherwise."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rancherlab.protocol import DISCONNECTED, Event, go_json, marker, norman, parse_frame, parse_sent, steve
from rancherlab.recording import RecordingWriter, read_recording
from rancherlab.redaction import PLACEHOLDER, Redactor

from .conftest import SECRET_TOKEN, sample
from .test_recording import make_header, stamp

PLACEHOLDER_RE = re.compile(r"<redacted len=(\d+) hmac=([0-9a-f]{12})>")
CA_CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUPublicCertificateBodyKeepMe\n-----END CERTIFICATE-----\n"


def pem_key(tag: str, kind: str = "RSA PRIVATE KEY") -> str:
    return f"-----BEGIN {kind}-----\nMIIEpAIBAAKCAQEA{tag}PrivateKeyBody+/=\nAnotherLine{tag}\n-----END {kind}-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Secrets:
    """Builds objects full of distinctive secret values and remembers every form of each value."""

    def __init__(self) -> None:
        self.values: list[str] = []  # every value as it appears in the input
        self.decoded: list[str] = []  # the plain text behind base64-encoded values
        self._n = 0

    def new(self, label: str) -> str:
        self._n += 1
        value = f"S3cr3t-{label}-{self._n:03d}-q7Zx"
        self.values.append(value)
        return value

    def encoded(self, label: str) -> str:
        self._n += 1
        plain = f"S3cr3t-{label}-{self._n:03d}-q7Zx"
        self.decoded.append(plain)
        self.values.append(b64(plain))
        return b64(plain)

    def add(self, *values: str) -> None:
        self.values.extend(values)


def steve_secret_events(s: Secrets) -> list[Event]:
    """The real Steve secrets collection, each item given data / stringData and sent as resource.change."""
    collection = sample("steve-v1-secrets-collection-rancher-integration-testdata.json")
    events = []
    for i, item in enumerate(collection["data"]):
        obj = copy.deepcopy(item)
        obj["data"] = {"password": s.encoded("steve-pw"), "config.json": s.encoded("steve-json")}
        if i == 0:
            key = pem_key("SteveTls")
            obj["data"]["tls.key"] = b64(key)
            obj["data"]["tls.crt"] = b64(CA_CERT)  # a certificate is not a secret, but it is secret data: hidden too
            s.add(b64(key), b64(CA_CERT))
            s.decoded.append(key)
        if i == 1:
            obj["stringData"] = {
                "token": s.new("steve-stringdata"),
                "url": "https://user:" + s.new("inurl") + "@h/x?a=<b>&c",
            }
        last = {
            "apiVersion": "v1",
            "kind": "Secret",
            "data": dict(obj["data"]),
            "metadata": {"name": obj["metadata"]["name"]},
        }
        obj["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(last) + "\n",
            "field.cattle.io/projectId": "c-abc12:p-xyz34",
        }
        events.append(
            parse_frame(
                steve.encode_event(
                    "resource.change",
                    data=obj,
                    revision=obj["metadata"]["resourceVersion"],
                    echo={"resourceType": "secret"},
                ),
                "steve",
            )
        )
    return events


def norman_secret_objects(s: Secrets) -> list[dict[str, Any]]:
    base = {
        "namespaceId": "default",
        "projectId": "c-abc12:p-xyz34",
        "created": "2026-03-01T12:00:00Z",
        "createdTS": 1772366400000,
        "creatorId": "user-abcde",
        "labels": {},
        "state": "active",
    }
    token_item = copy.deepcopy(sample("norman-v3-tokens-collection-qa-server-dashboard-blueprint.json")["data"][0])
    registration = "q8vrx2k9sx5lpkmbw6nz7w2bq6tt4xgdfkjhl2cb6kqrn8xw9z7mlh"
    s.add(registration)
    sa = pem_key("SshAuth", "OPENSSH PRIVATE KEY")
    ck = pem_key("CertKey", "PRIVATE KEY")
    sp = pem_key("SamlSp")
    s.add(sa, ck, sp)
    return [
        {
            **base,
            "id": "default:app-secret",
            "type": "namespacedSecret",
            "baseType": "namespacedSecret",
            "name": "app-secret",
            "kind": "Opaque",
            "data": {"api-key": s.encoded("ns-data"), "db<&>pw": s.encoded("ns-data2")},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"api-key":"' + s.encoded("lac") + '"}}'
            },
        },
        {
            **base,
            "id": "default:basic",
            "type": "namespacedBasicAuth",
            "baseType": "namespacedSecret",
            "name": "basic",
            "username": "deploy-bot",
            "password": s.new("basic-pw"),
        },
        {
            **base,
            "id": "default:ssh",
            "type": "namespacedSshAuth",
            "baseType": "namespacedSecret",
            "name": "ssh",
            "privateKey": sa,
        },
        {
            **base,
            "id": "default:tls",
            "type": "namespacedCertificate",
            "baseType": "namespacedSecret",
            "name": "tls",
            "certs": CA_CERT,
            "key": ck,
            "cn": "example.com",
        },
        {
            **base,
            "id": "default:registry",
            "type": "namespacedDockerCredential",
            "baseType": "namespacedSecret",
            "name": "registry",
            "registries": {
                "index.docker.io": {"username": "bot", "password": s.new("docker-pw"), "auth": s.encoded("docker-auth")}
            },
        },
        {
            "id": "c-abc12:p-xyz34:project-secret",
            "type": "secret",
            "baseType": "secret",
            "projectId": "c-abc12:p-xyz34",
            "data": {"k": s.encoded("project-secret")},
        },
        {**token_item, "token": "token-m4x2q:" + s.new("token-value") + "tokentokentoken"},
        {
            "id": "c-abc12:default-token",
            "type": "clusterRegistrationToken",
            "baseType": "clusterRegistrationToken",
            "clusterId": "c-abc12",
            "name": "default-token",
            "token": registration,
            "command": f"kubectl apply -f https://rancher.example.com/v3/import/{registration}_c-abc12.yaml",
            "insecureCommand": f"curl --insecure -sfL https://rancher.example.com/v3/import/{registration}_c-abc12.yaml | kubectl apply -f -",
            "manifestUrl": f"https://rancher.example.com/v3/import/{registration}_c-abc12.yaml",
            "nodeCommand": f"sudo docker run -d --privileged rancher/rancher-agent:v2.9.2 --server https://rancher.example.com --token {registration} --ca-checksum 0123",
            "windowsNodeCommand": f'PowerShell -NoLogo -Command "& {{docker run -v c:\\:c:\\host rancher/rancher-agent:v2.9.2 bootstrap --server https://rancher.example.com --token {registration}}}"',
            "insecureNodeCommand": f"curl --insecure -fL https://rancher.example.com/system-agent-install.sh | sudo sh -s - --token {registration}",
        },
        {
            "id": "github",
            "type": "githubConfig",
            "baseType": "authConfig",
            "enabled": True,
            "clientId": "Iv1.abc",
            "clientSecret": s.new("gh-client"),
        },
        {
            "id": "activedirectory",
            "type": "activeDirectoryConfig",
            "baseType": "authConfig",
            "serviceAccountUsername": "svc",
            "serviceAccountPassword": s.new("ad-pw"),
        },
        {
            "id": "azuread",
            "type": "azureADConfig",
            "baseType": "authConfig",
            "applicationId": "app",
            "applicationSecret": s.new("azure"),
        },
        {"id": "ping", "type": "pingConfig", "baseType": "authConfig", "spCert": CA_CERT, "spKey": sp},
        {
            **base,
            "id": "default:cm",
            "type": "configMap",
            "baseType": "configMap",
            "data": {
                "notes.txt": "see key below\n" + pem_key("InConfigMap", "EC PRIVATE KEY") + "end",
                "deployed-by": f"curl -H 'Authorization: Bearer {SECRET_TOKEN}' ...",
            },
            "description": f"created with {SECRET_TOKEN}",
        },
    ]


def secret_stream(s: Secrets) -> tuple[list[Event], list[Event]]:
    norman_events = [parse_frame(norman.change_frame(o), "norman") for o in norman_secret_objects(s)]
    s.add(pem_key("InConfigMap", "EC PRIVATE KEY"))
    norman_events += [
        Event(
            0,
            0,
            0.0,
            None,
            "norman",
            "snapshot",
            "resource.create",
            type="namespacedBasicAuth",
            id="default:snap",
            data={"type": "namespacedBasicAuth", "id": "default:snap", "password": s.new("snapshot-pw")},
        ),
        marker(DISCONNECTED, "norman", code=1006, reason=f"server said {SECRET_TOKEN}"),
        parse_frame(
            '{"name":"resource.change","data":{"type":"namespacedSecret","data":{"a":"' + s.new("cut") + '"', "norman"
        ),
    ]
    return stamp(norman_events), stamp(steve_secret_events(s))


def caller_token_forms() -> list[str]:
    secret_half = SECRET_TOKEN.split(":", 1)[1]
    return [SECRET_TOKEN, secret_half, b64(SECRET_TOKEN), base64.urlsafe_b64encode(SECRET_TOKEN.encode()).decode()]


# --- the acceptance test: a recording of secrets holds none of them --------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_a_recording_of_secrets_contains_none_of_them(tmp_path: Path, suffix: str) -> None:
    s = Secrets()
    norman_events, steve_events = secret_stream(s)
    for dialect, events in (("norman", norman_events), ("steve", steve_events)):
        r = Redactor(credentials=[SECRET_TOKEN])
        redacted = [r.redact(e) for e in events]
        path = tmp_path / f"{dialect}{suffix}"
        with RecordingWriter(
            path, make_header(dialect, "global" if dialect == "norman" else "steve", redaction=r)
        ) as w:
            w.write_many(redacted)
        data = path.read_bytes()
        text = gzip.decompress(data) if suffix.endswith(".gz") else data
        assert b"<redacted" in text.replace(b"\\u003c", b"<")
        for value in [*s.values, *s.decoded, *caller_token_forms()]:
            for form in {value, json.dumps(value)[1:-1], go_json(value)[1:-1]}:
                assert form.encode() not in text, f"{form[:30]!r} leaked into the {dialect} recording"
                assert form.encode() not in data
        assert list(read_recording(path)) == redacted  # the reader rebuilds exactly the redacted events
        assert r._fallbacks == 0  # every raw text was edited in place, never re-serialised
    assert b"BEGIN CERTIFICATE" in (tmp_path / f"norman{suffix}").read_bytes() or suffix.endswith(".gz")


def test_input_really_contained_the_values() -> None:
    s = Secrets()
    norman_events, steve_events = secret_stream(s)
    everything = "".join(e.raw or json.dumps(e.data) + json.dumps(dict(e.info)) for e in norman_events + steve_events)
    missing = [
        v[:20]
        for v in s.values
        if v not in everything and json.dumps(v)[1:-1] not in everything and go_json(v)[1:-1] not in everything
    ]
    assert not missing
    assert SECRET_TOKEN in everything


# --- byte fidelity ----------------------------------------------------------------------------------

LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def test_raw_changes_only_at_the_redacted_values() -> None:
    s = Secrets()
    norman_events, steve_events = secret_stream(s)
    r = Redactor(credentials=[SECRET_TOKEN])
    for event in norman_events[:-3] + steve_events:
        out = r.redact(event)
        assert out.raw is not None and event.raw is not None and out.raw != event.raw
        assert json.loads(out.raw)["data"] == out.data
        # Outside string literals not a byte differs; a literal that differs now holds a placeholder.
        assert LITERAL.split(out.raw) == LITERAL.split(event.raw)
        before, after = LITERAL.findall(event.raw), LITERAL.findall(out.raw)
        assert len(before) == len(after)
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert changed and all(PLACEHOLDER_RE.search(json.loads(b)) for _, b in changed)
        for a, b in changed:
            old, new = json.loads(a), json.loads(b)
            if PLACEHOLDER_RE.fullmatch(new):
                assert new == r.placeholder(old)


def test_placeholder_keeps_length_and_equality_but_not_the_value() -> None:
    r = Redactor()
    a, b = r.placeholder("hunter2hunter2"), r.placeholder("hunter2hunter2")
    m = PLACEHOLDER_RE.fullmatch(a)
    assert a == b and m and m[1] == "14"
    assert r.placeholder("other") != a
    assert Redactor().placeholder("hunter2hunter2") != a  # a random key per recording: values cannot be guessed
    assert PLACEHOLDER.format(len=3, hmac="0" * 12) == "<redacted len=3 hmac=000000000000>"


def test_go_escaping_and_other_encoders_are_matched() -> None:
    r = Redactor()
    value = 'pa<ss>&w"o\\rd\u2028é'
    obj = {"type": "namespacedBasicAuth", "id": "default:x", "password": value, "note": "a<b"}
    for raw in (
        norman.change_frame(obj),  # Go: \u003c ...
        '{"name":"resource.change","data":' + json.dumps(obj) + "}",  # Python: ASCII only
        '{"name":"resource.change","data":' + json.dumps(obj, ensure_ascii=False, indent=1) + "}",
    ):
        out = r.redact(parse_frame(raw, "norman"))
        assert out.data["password"] == r.placeholder(value) and out.data["note"] == "a<b"
        assert json.loads(out.raw or "")["data"] == out.data
        kept = raw.split('"note"')[1].split(",")[0].split("}")[0]
        assert kept in (out.raw or "")  # the untouched literal keeps its own escaping
    assert r._fallbacks == 0


def test_redaction_off_and_clean_events_are_untouched() -> None:
    s = Secrets()
    norman_events, steve_events = secret_stream(s)
    off = Redactor(enabled=False, credentials=[SECRET_TOKEN])
    assert all(off.redact(e) is e for e in norman_events + steve_events)
    nodes = sample("norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json")["data"]
    pods = sample("steve-v1-pods-collection-qa-server-dashboard-blueprint.json")["data"]
    on = Redactor(credentials=[SECRET_TOKEN])
    clean = [parse_frame(norman.change_frame(n), "norman") for n in nodes]
    clean += [parse_frame(steve.encode_event("resource.change", data=p, revision="1"), "steve") for p in pods]
    clean += [parse_sent('{"resourceType":"secret"}', "steve"), parse_frame(norman.PING, "norman")]
    for event in clean:
        assert on.redact(event) == event


def test_caller_credentials_everywhere() -> None:
    r = Redactor(credentials=[SECRET_TOKEN, "R_SESS-cookie-value-123456"])
    basic = base64.urlsafe_b64encode(SECRET_TOKEN.encode()).decode()
    obj = {
        "type": "pod",
        "id": "default:web",
        "annotations": {"note": f"Basic {basic}", SECRET_TOKEN: "as a key"},
        "links": {"self": "https://h/v3/x?t=R_SESS-cookie-value-123456"},
    }
    out = r.redact(parse_frame(norman.change_frame(obj), "norman"))
    assert out.raw is not None
    for value in (*caller_token_forms(), "R_SESS-cookie-value-123456"):
        assert value not in out.raw and value not in json.dumps(out.data)
    assert json.loads(out.raw)["data"] == out.data
    unparsed = r.redact(parse_frame(f'{{"name":"resource.change","data":{{"note":"{SECRET_TOKEN}', "norman"))
    assert unparsed.kind == "marker" and SECRET_TOKEN not in (unparsed.raw or "")
    assert SECRET_TOKEN not in r.redact_text(f"GET /v3?x=1 Authorization: Bearer {SECRET_TOKEN}")
    assert SECRET_TOKEN not in r.redact(marker(DISCONNECTED, "steve", reason=SECRET_TOKEN)).info["reason"]


def test_cut_frames_that_may_hold_secrets_are_hidden_whole() -> None:
    r = Redactor()
    raw = '{"name":"resource.change","data":{"type":"namespacedBasicAuth","password":"abc'
    out = r.redact(parse_frame(raw, "norman"))
    assert out.kind == "marker" and out.raw == r.placeholder(raw)
    harmless = '{"name":"resource.change","data":{"type":"pod","id":"x"'
    assert r.redact(parse_frame(harmless, "norman")).raw == harmless


def test_policy_switches_and_extra_paths() -> None:
    obj = {
        "type": "cloudCredential",
        "id": "cattle-global-data:cc-1",
        "amazonec2credentialConfig": {"accessKey": "AKIAEXAMPLE", "secretKey": "wJalrXUtnFEMI/K7MDENG"},
        "token": "tok-1234567890",
        "note": pem_key("X"),
    }
    frame = parse_frame(norman.change_frame(obj), "norman")
    default = Redactor().redact(frame).data
    assert default["amazonec2credentialConfig"]["secretKey"].startswith("<redacted")
    assert default["amazonec2credentialConfig"]["accessKey"] == "AKIAEXAMPLE"
    assert default["token"] == "tok-1234567890"  # not a token object: left alone
    assert default["note"].startswith("<redacted len=")
    extra = Redactor(extra_paths=["cloudCredential:amazonec2credentialConfig.accessKey", "token"]).redact(frame).data
    assert extra["amazonec2credentialConfig"]["accessKey"].startswith("<redacted") and extra["token"].startswith(
        "<redacted"
    )
    assert Redactor(pem=False, secrets=False).redact(frame).data == obj
    only_tokens = Redactor(secrets=False, pem=False)
    tok = parse_frame(
        norman.change_frame({"type": "token", "id": "token-x", "token": "token-x:abcdefghijkl"}), "norman"
    )
    assert only_tokens.redact(tok).data["token"].startswith("<redacted")


def test_policy_repr_and_derive_never_show_credentials() -> None:
    r = Redactor(credentials=[SECRET_TOKEN], extra_paths=["spec.x"])
    text = repr(r) + json.dumps(r.policy)
    assert SECRET_TOKEN.split(":")[1] not in text and "<1 hidden>" in repr(r)
    assert r.policy["credentials"] == 1 and r.policy["enabled"] is True and r.policy["extra_paths"] == ["spec.x"]
    again = Redactor.from_policy(r.policy, credentials=[SECRET_TOKEN])
    assert again.policy == r.policy
    d = r.derive(credentials=["another-credential-1"])
    assert d.policy["credentials"] == 2 and d.placeholder("x") != r.placeholder("x")
    with pytest.raises(ValueError):
        Redactor(extra_paths=["type:"])


# --- the shortcut never skips what the full walk would redact ---------------------------------------

_KEYS = [
    "password",
    "clientSecret",
    "secretName",
    "token",
    "data",
    "stringData",
    "name",
    "key",
    "spKey",
    "metadata",
    "annotations",
    "kubectl.kubernetes.io/last-applied-configuration",
    "registries",
    "command",
    "status",
    "value",
    # Rancher's field semantics: names of secrets, link maps, values only under a given parent
    "s3CredentialSecret",
    "serviceAccountTokenSecret",
    "serviceAccountToken",
    "aadClientSecret",
    "azureCloudProvider",
    "clusterSecrets",
    "applicationSecret",
    "importedConfig",
    "kubeConfig",
    "linodecredentialConfig",
    "links",
    "actions",
    "setpassword",
    "sort",
    "linodeConfig",
    "rootPass",
]
_TYPES = [
    "secret",
    "namespacedSecret",
    "pod",
    "token",
    "clusterRegistrationToken",
    "configMap",
    "namespacedCertificate",
    "management.cattle.io.token",
    "githubConfig",
    "namespacedDockerCredential",
    "rke-machine-config.cattle.io.linodeconfig",
    "serviceAccountToken",
]
_STRINGS = [
    "",
    "plain",
    "a<b>&c",
    "q8vrx2k9sx5lpkmbw6",
    pem_key("Fuzz"),
    b64(pem_key("B64")),
    SECRET_TOKEN,
    f"x {SECRET_TOKEN.split(':')[1]} y",
    "ünïcode\u2028",
]


def _objects() -> Any:
    from hypothesis import strategies as st

    leaves = st.one_of(st.sampled_from(_STRINGS), st.integers(-5, 5), st.booleans(), st.none())

    def typed(t: str, d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "type": t}

    # A named function: hypothesis checks from its source that `extend` uses its argument, and cannot
    # tell which of several lambdas on one expression is the one it was given.
    def extend(children: Any) -> Any:
        return st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(_KEYS), children, max_size=4),
            st.builds(typed, st.sampled_from(_TYPES), st.dictionaries(st.sampled_from(_KEYS), children, max_size=4)),
        )

    return st.recursive(leaves, extend, max_leaves=14)


def _shape(value: Any) -> Any:
    """Placeholders without their (per-redactor) hash, so two redactors' results compare."""
    return json.loads(re.sub(r"hmac=[0-9a-f]{12}", "hmac=H", json.dumps(value)))


def test_shortcut_agrees_with_the_full_walk() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.builds(
            lambda t, d: {**d, "type": t},
            st.sampled_from(_TYPES),
            st.dictionaries(st.sampled_from(_KEYS), _objects(), max_size=5),
        ),
        st.booleans(),
    )
    def check(obj: dict[str, Any], as_norman: bool) -> None:
        raw = norman.change_frame(obj) if as_norman else steve.encode_event("resource.change", data=obj, revision="1")
        event = parse_frame(raw, "norman" if as_norman else "steve")
        quick = Redactor(credentials=[SECRET_TOKEN])
        full = Redactor(credentials=[SECRET_TOKEN], extra_paths=["never-a-type:never"])  # extra paths: always walk
        a, b = quick.redact(event), full.redact(event)
        assert _shape(a.data) == _shape(b.data)
        assert _shape(json.loads(a.raw or "")) == _shape(json.loads(b.raw or ""))
        assert json.loads(a.raw or "")["data"] == a.data
        assert quick._fallbacks == 0 and full._fallbacks == 0
        text = (a.raw or "") + json.dumps(a.data)
        assert SECRET_TOKEN not in text and SECRET_TOKEN.split(":")[1] not in text and "PRIVATE KEY" not in text

    check()


@pytest.mark.parametrize("encode", ["go", "json", "json-ascii"])
def test_a_credential_escaped_in_raw_is_redacted_from_the_fields_read_from_it(encode: str) -> None:
    # A clean raw text means a clean event (the redactor's shortcut for frames): that holds because each field is a
    # substring of raw once unescaped, and the credential is looked for in every escaped form. A credential that
    # JSON escapes (quote, backslash, non-ASCII) in the object id shows it.
    credential = 'token-q"x:se\\cr/et\u00e9-0123456789'
    obj = {"type": "pod", "id": f"default:{credential}", "name": "web"}
    doc = {"name": "resource.change", "data": obj}
    raw = {
        "go": norman.change_frame(obj),
        "json": json.dumps(doc, ensure_ascii=False),
        "json-ascii": json.dumps(doc),
    }[encode]
    event = parse_frame(raw, "norman")
    assert event.id == f"default:{credential}"
    out = Redactor(credentials=[credential]).redact(event)
    secret_half = credential.split(":", 1)[1]
    for text in (out.id or "", out.raw or "", json.dumps(out.data, ensure_ascii=False)):
        assert credential not in text and secret_half not in text
    assert out.type == "pod" and out.name == "resource.change"
