"""Redaction follows Rancher's field semantics: only secret values change; names of secrets, links, booleans
and numbers under secret-looking keys stay byte-identical (issue: redaction hid `serviceAccountTokenSecret`,
`s3CredentialSecret`, `privateRegistrySecret` and `actions.setpassword`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rancherlab.protocol import norman, parse_frame, steve
from rancherlab.protocol.event import Event
from rancherlab.protocol.secrets import (
    KEY_ENDINGS,
    SECRET_FIELDS,
    SECRET_FIELDS_IN,
    SECRET_NAME,
    SECRET_TYPES,
    TOKEN_TYPES,
    TYPE_ENDINGS,
    field_holds_secret,
    is_link_map,
    may_hold_secret,
)
from rancherlab.redaction import Redactor
from rancherlab.simulator import formats as F
from rancherlab.simulator.world import World

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "rancher-ws-samples"
FIELDS = json.loads((FIXTURES / "secret-fields" / "rancher-secret-fields.json").read_text())
MARKER = FIELDS["marker"].lower()
PLACEHOLDER = re.compile(r"<redacted len=\d+ hmac=[0-9a-f]{12}>")
LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')

Path_ = tuple[str | int, ...]


def leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every leaf of a JSON value with its path; keys are part of the path, so a changed key shows too."""
    if isinstance(node, dict):
        if not node:
            yield path, {}
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, list):
        if not node:
            yield path, []
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))
    else:
        yield path, node


def changes(before: Any, after: Any) -> dict[Path_, tuple[Any, Any]]:
    """Path → (before, after) for every leaf that differs (a leaf missing on one side counts as a change)."""
    a, b = dict(leaves(before)), dict(leaves(after))
    return {p: (a.get(p), b.get(p)) for p in a.keys() | b.keys() if a.get(p, KeyError) != b.get(p, KeyError)}


def frame_of(dialect: str, obj: dict[str, Any]) -> Event:
    if dialect == "norman":
        return parse_frame(norman.change_frame(obj), "norman")
    return parse_frame(steve.encode_event("resource.change", data=obj, revision="1"), "steve")


def assert_raw_changed_only_in(before: str, after: str, may_change: Any) -> None:
    """Byte fidelity: outside string literals nothing differs; a literal that differs satisfies `may_change`."""
    assert LITERAL.split(after) == LITERAL.split(before)
    for old, new in zip(LITERAL.findall(before), LITERAL.findall(after), strict=True):
        if old != new:
            assert may_change(json.loads(old)), f"{old[:60]} changed"
            assert PLACEHOLDER.search(json.loads(new))


# --- the fixtures: reference fields next to real secret fields --------------------------------------------------


@pytest.mark.parametrize("item", FIELDS["objects"], ids=[o["what"][:40] for o in FIELDS["objects"]])
def test_only_the_secret_values_change(item: dict[str, Any]) -> None:
    obj, dialect = item["object"], item["dialect"]
    r = Redactor()
    secret_leaves = {p for p, v in leaves(obj) if isinstance(v, str) and MARKER in v.lower()}
    out = r.redact_value(obj)
    changed = changes(obj, out)
    assert set(changed) == secret_leaves  # every secret hidden, nothing else touched
    for old, new in changed.values():
        assert MARKER not in new.lower() and PLACEHOLDER.search(new)
    # The same object as it arrives on the wire: raw text edited in place, data equal to the walk's result.
    event = frame_of(dialect, obj)
    redacted = r.redact(event)
    assert redacted.data == out
    assert event.raw is not None and redacted.raw is not None
    assert MARKER not in redacted.raw.lower()
    assert_raw_changed_only_in(event.raw, redacted.raw, lambda text: MARKER in text.lower())
    assert r._fallbacks == 0


def test_the_fixtures_hold_secrets_and_references() -> None:
    values = [v for o in FIELDS["objects"] for _, v in leaves(o["object"]) if isinstance(v, str)]
    assert sum(MARKER in v.lower() for v in values) >= 30
    assert (
        sum(v.startswith(("cluster-", "catalog-credential-", "notifier-", "cattle-global-data:")) for v in values) >= 30
    )


def _object(what: str) -> dict[str, Any]:
    return next(o["object"] for o in FIELDS["objects"] if o["what"].startswith(what))


def test_the_fields_named_in_the_report() -> None:
    r = Redactor()
    after = r.redact_value(_object("the same cluster after"))
    original = _object("the same cluster after")
    for key in ("serviceAccountTokenSecret", "s3CredentialSecret", "privateRegistrySecret", "aadClientSecret"):
        assert after[key] == original[key] and after[key].startswith("cluster-")
    assert after["clusterSecrets"] == original["clusterSecrets"]
    assert after["actions"] == original["actions"] and after["links"] == original["links"]
    before = r.redact_value(_object("RKE1 cluster before"))
    rke = before["rancherKubernetesEngineConfig"]
    assert PLACEHOLDER.fullmatch(rke["cloudProvider"]["azureCloudProvider"]["aadClientSecret"])  # a value here
    assert PLACEHOLDER.fullmatch(before["serviceAccountToken"])
    azure = r.redact_value(_object("azureADConfig"))
    assert PLACEHOLDER.fullmatch(azure["applicationSecret"])  # looks like a reference, is a type=password value
    users = json.loads((SAMPLES / "norman-v3-users-collection-qa-server-dashboard-blueprint.json").read_text())
    assert r.redact_value(users) == users  # actions.setpassword, sort.links.password, mustChangePassword, ...
    for user in users["data"]:
        event = frame_of("norman", user)
        assert r.redact(event) is event  # nothing to hide: the very same event, raw untouched


# --- every real object we have, and every object of the simulator ----------------------------------------------


def _sample_docs() -> Iterator[tuple[str, Any]]:
    for path in sorted(SAMPLES.glob("*.json")):
        yield path.name, json.loads(path.read_text())


def test_real_samples_are_left_byte_identical() -> None:
    r = Redactor()
    seen = 0
    for name, doc in _sample_docs():
        assert changes(doc, r.redact_value(doc)) == {}, name
        items = doc.get("data") if isinstance(doc, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and "type" in item:
                dialect = "steve" if name.startswith("steve") else "norman"
                event = frame_of(dialect, item)
                assert r.redact(event).raw == event.raw, name
                seen += 1
    for line in (SAMPLES / "frames-index.jsonl").read_text().splitlines():
        entry = json.loads(line)
        dialect = "norman" if "norman" in entry["api"] else "steve"
        event = parse_frame(entry["raw"], dialect)
        assert r.redact(event).raw == event.raw
        seen += 1
    assert seen >= 20


# What Rancher's types say is secret in the objects the simulator makes (the test's own table, from
# rancher/rancher pkg/apis/project.cattle.io/v3/types.go `writeOnly` fields, Kubernetes Secret data,
# Token.Token and User.Password): (type, path pattern).
SIMULATOR_SECRETS: tuple[tuple[str, Path_], ...] = (
    ("secret", ("data", "*")),
    ("namespacedSecret", ("data", "*")),
    ("namespacedBasicAuth", ("password",)),
    ("namespacedSshAuth", ("privateKey",)),
    ("namespacedCertificate", ("key",)),
    ("namespacedDockerCredential", ("registries", "*", "password")),
    ("namespacedDockerCredential", ("registries", "*", "auth")),
    ("management.cattle.io.token", ("token",)),
    ("token", ("token",)),
    ("management.cattle.io.user", ("password",)),
    ("user", ("password",)),
)


def _matches(path: Path_, pattern: Path_) -> bool:
    return len(path) == len(pattern) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True))


def _simulator_objects(world: World) -> Iterator[tuple[str, dict[str, Any]]]:
    for res in world.resources():
        for schema, obj in F.norman_views(world, res, "global", None, "https://h"):
            yield "norman", obj
        for cluster in world.clusters():
            for schema, obj in F.norman_views(world, res, "cluster", cluster, "https://h"):
                yield "norman", obj
            for project in world.projects(cluster):
                for schema, obj in F.norman_views(world, res, "project", project, "https://h"):
                    yield "norman", obj
        prefix = "" if res.cluster == "local" else f"/k8s/clusters/{res.cluster}"
        view = F.steve_view(world, res, res.kind, "https://h", prefix)
        if view is not None:
            yield "steve", view


def test_simulator_objects_change_only_at_secret_values() -> None:
    world = World(7)
    for _ in range(40):
        world.step()  # some churn: objects in every state
    r = Redactor()
    counted = {"norman": 0, "steve": 0}
    hidden = 0
    for dialect, obj in _simulator_objects(world):
        patterns = [p for t, p in SIMULATOR_SECRETS if t == obj.get("type")]
        expected = {
            path
            for path, value in leaves(obj)
            if isinstance(value, str) and value and any(_matches(path, p) for p in patterns)
        }
        out = r.redact_value(obj)
        assert set(changes(obj, out)) == expected, obj.get("id")
        event = frame_of(dialect, obj)
        redacted = r.redact(event)
        assert redacted.data == out
        if expected:
            assert event.raw is not None and redacted.raw is not None
            secrets = {v for p, v in leaves(obj) if p in expected}
            assert_raw_changed_only_in(event.raw, redacted.raw, secrets.__contains__)
        else:
            assert redacted.raw == event.raw
        counted[dialect] += 1
        hidden += len(expected)
    assert counted["norman"] >= 50 and counted["steve"] >= 150 and hidden >= 30
    assert r._fallbacks == 0


# --- the rule itself ----------------------------------------------------------------------------------------------


def test_the_rule_tells_values_from_names() -> None:
    assert field_holds_secret("applicationSecret") and field_holds_secret("clientSecret")
    assert field_holds_secret("password") and field_holds_secret("serviceAccountToken")
    assert not field_holds_secret("serviceAccountTokenSecret")
    assert not field_holds_secret("s3CredentialSecret", "clusterSecrets")
    assert not field_holds_secret("aadClientSecret", "clusterSecrets")
    assert field_holds_secret("aadClientSecret", "azureCloudProvider")
    assert field_holds_secret("kubeConfig", "importedConfig") and not field_holds_secret("kubeConfig")
    assert field_holds_secret("token", "linodecredentialConfig") and not field_holds_secret("token", "links")
    assert not field_holds_secret("tokenSecretName") and not field_holds_secret("cloudCredentialSecretName")
    assert field_holds_secret("someDriverSecretKey")  # a run-time schema's field: hidden for safety
    for key in ("aadClientSecret", "token", "kubeConfig", "serviceAccountToken", "applicationSecret"):
        assert may_hold_secret(key)
    assert not may_hold_secret("s3CredentialSecret") and not may_hold_secret("privateRegistrySecret")
    assert is_link_map("actions", {"type": "user"}, None) and is_link_map("links", {"order": "asc"}, "sort")
    assert not is_link_map("links", {"name": "x"}, "spec")  # a field called links inside a spec is data


def test_every_secret_name_has_an_ending_the_quick_scan_knows() -> None:
    # The redactor skips the full walk when no key in the text ends in KEY_ENDINGS: a name that does not
    # would never be redacted on that path.
    # (a name under a `...Config` parent is found through its parent, as the driver fields are)
    inside = [names for parent, names in SECRET_FIELDS_IN.items() if not parent.lower().endswith("config")]
    names = SECRET_FIELDS | frozenset().union(*inside)
    assert all(n.lower().endswith(KEY_ENDINGS) for n in names)
    assert all(alt.endswith(KEY_ENDINGS) for alt in SECRET_NAME.pattern.split("(?:")[1].split(")")[0].split("|"))
    assert all(t.endswith(TYPE_ENDINGS) for t in SECRET_TYPES | TOKEN_TYPES | {"clusterregistrationtoken"})
    assert field_holds_secret("rootPass", "linodeConfig") and not field_holds_secret("rootPass", "spec")
    r = Redactor()
    template = {"type": "nodeTemplate", "id": "cattle-global-nt:nt-x", "linodeConfig": {"rootPass": "hunter2-root"}}
    event = frame_of("norman", template)
    assert PLACEHOLDER.fullmatch(r.redact(event).data["linodeConfig"]["rootPass"])
    # Steve shows a machine config as an object of its own: its type stands in for the `...Config` parent
    machine = {
        "type": "rke-machine-config.cattle.io.linodeconfig",
        "id": "fleet-default/nc-edge-pool1-x7k2p",
        "region": "eu-central",
        "image": "linode/ubuntu22.04",
        "rootPass": "linode-root-pw-1234",
        "token": "linode-api-token-5678",
        "links": {"self": "https://h/v1/rke-machine-config.cattle.io.linodeconfigs/fleet-default/nc-edge-pool1-x7k2p"},
    }
    assert set(changes(machine, r.redact(frame_of("steve", machine)).data)) == {("rootPass",), ("token",)}


def test_booleans_numbers_and_null_under_secret_names_are_kept() -> None:
    obj = {
        "type": "setting",
        "id": "x",
        "mustChangePassword": True,
        "password": None,
        "secretKey": 0,
        "clientSecret": 12.5,
        "apiKey": False,
        "privateKey": "",
        "spec": {"links": {"password": "not a link: a secret in a map merely called links"}},
    }
    r = Redactor()
    out = r.redact_value(obj)
    assert set(changes(obj, out)) == {("spec", "links", "password")}
