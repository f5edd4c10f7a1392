"""The simulator's REST: collections shaped like Rancher's, paging, lookups, and list-then-watch convergence."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rancherlab.simulator import formats as F
from rancherlab.simulator.rest import handle_rest
from rancherlab.simulator.world import World

from .conftest import SAMPLES

BASE = "https://rancher.test"


def get(world: World, path: str, **query: str) -> tuple[int, dict[str, Any]]:
    reply = handle_rest(world, path, {k: [v] for k, v in query.items()}, BASE)
    assert reply is not None, path
    return reply


def ok(world: World, path: str, **query: str) -> dict[str, Any]:
    status, body = get(world, path, **query)
    assert status == 200, (path, body)
    return body


def prefix(cluster: str) -> str:
    return "" if cluster == "local" else f"/k8s/clusters/{cluster}"


@pytest.fixture()
def world() -> World:
    w = World(21)
    for _ in range(150):
        w.step()
    return w


# ----------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(
    ("path", "sample"),
    [
        ("/v3/nodes", "norman-v3-nodes-collection-rancher2.0.6-zabbix-rancher.json"),
        ("/v3/clusters", "norman-v3-clusters-collection-rancher2.0.6-zabbix-rancher.json"),
        ("/v3/users", "norman-v3-users-collection-qa-server-dashboard-blueprint.json"),
        ("/v3/tokens", "norman-v3-tokens-collection-qa-server-dashboard-blueprint.json"),
    ],
)
def test_norman_collections_are_shaped_like_rancher(world: World, path: str, sample: str) -> None:
    real = json.loads((SAMPLES / sample).read_text())
    body = ok(world, path)
    assert set(real) <= set(body)
    assert body["type"] == "collection" and body["resourceType"] == real["resourceType"]
    assert body["links"]["self"] == f"{BASE}{path}"
    assert body["createTypes"] == {real["resourceType"]: f"{BASE}{path}"}
    assert body["pagination"] == {"limit": 1000, "total": len(body["data"])}
    assert set(body["sort"]) == {"order", "reverse", "links"}
    assert all(o["type"] == real["resourceType"] for o in body["data"])


@pytest.mark.parametrize(
    ("sample", "namespaced"),
    [
        ("steve-v1-secrets-collection-rancher-integration-testdata.json", True),
        ("steve-v1-pods-collection-qa-server-dashboard-blueprint.json", False),
    ],
)
def test_steve_collections_are_shaped_like_rancher(world: World, sample: str, namespaced: bool) -> None:
    real = json.loads((SAMPLES / sample).read_text())
    schema = real["resourceType"]
    res = world.resources(schema, "local")[0]
    path = f"/v1/{F.steve_schemas()[schema]['plural']}" + (f"/{res.namespace}" if namespaced else "")
    body = ok(world, path)
    assert set(real) <= set(body)
    assert body["revision"] == str(world.revision)
    assert body["count"] == len(body["data"]) > 0
    assert body["links"]["self"] == f"{BASE}{path}"
    assert body["createTypes"] == {schema: f"{BASE}/v1/{F.steve_schemas()[schema]['plural']}"}
    assert [o["id"] for o in body["data"]] == sorted(o["id"] for o in body["data"])


def test_empty_steve_list_has_no_data_key(world: World) -> None:
    real = json.loads((SAMPLES / "steve-v1-secrets-collection-empty-rancher-integration-testdata.json").read_text())
    body = ok(world, "/v1/secrets/no-such-namespace")
    assert "data" not in body and "count" not in body
    # the sample's user could not create secrets, so its list also lacks createTypes; the simulator's admin can
    assert set(body) == set(real) | {"createTypes"}


def test_steve_lookup_by_plural_and_any_case(world: World) -> None:
    bodies = [ok(world, f"/v1/{name}") for name in ("pods", "pod", "Pods", "POD")]
    assert all(b["data"] == bodies[0]["data"] for b in bodies)
    assert all(b["resourceType"] == "pod" for b in bodies)
    assert ok(world, "/v1/apps.Deployments")["resourceType"] == "apps.deployment"


def test_steve_single_objects_and_errors(world: World) -> None:
    pod = world.resources("pod", "local")[0]
    assert ok(world, f"/v1/pods/{pod.namespace}/{pod.name}") == F.steve_view(world, pod, "pod", BASE)
    node = world.resources("node", "local")[0]
    assert ok(world, f"/v1/nodes/{node.name}")["id"] == node.name
    status, body = get(world, "/v1/nosuchtype")
    assert status == 404
    assert body["type"] == "error" and body["code"] == "NotFound" and body["status"] == 404
    assert "nosuchtype" in body["message"]
    assert get(world, f"/v1/pods/{pod.namespace}/nope")[0] == 404
    assert handle_rest(world, "/healthz", {}, BASE) is None


def test_downstream_steve_under_k8s_clusters(world: World) -> None:
    cid = world.clusters()[-1]
    body = ok(world, f"/k8s/clusters/{cid}/v1/pods")
    assert body["data"] and all(
        o["links"]["self"].startswith(f"{BASE}/k8s/clusters/{cid}/v1/pods/") for o in body["data"]
    )
    local_ids = {o["id"] for o in ok(world, "/v1/pods")["data"]}
    assert {o["id"] for o in body["data"]} != local_ids
    # management types live only in the local cluster's Steve
    assert get(world, f"/k8s/clusters/{cid}/v1/management.cattle.io.clusters")[0] == 404
    assert get(world, "/k8s/clusters/c-nope0/v1/pods")[0] == 404
    schemas = ok(world, f"/k8s/clusters/{cid}/v1/schemas")
    assert "pod" in {s["id"] for s in schemas["data"]} and not any(
        s["id"].startswith("management.") for s in schemas["data"]
    )
    assert {s["id"] for s in ok(world, "/v1/schemas")["data"]} == {*F.steve_schemas(), "count"}  # Steve lists `count`


def test_steve_pagination_walks_every_object_once(world: World) -> None:
    cid = world.clusters()[-1]
    full = ok(world, f"/k8s/clusters/{cid}/v1/configmaps")
    seen: list[str] = []
    query = {"limit": "4"}
    pages = 0
    while True:
        body = ok(world, f"/k8s/clusters/{cid}/v1/configmaps", **query)
        pages += 1
        seen += [o["id"] for o in body["data"]]
        assert body["count"] == full["count"]
        if "pagination" not in body:
            assert "continue" not in body
            break
        assert body["pagination"]["partial"] is True and len(body["data"]) == 4
        nxt = parse_qs(urlsplit(body["pagination"]["next"]).query)
        assert nxt["continue"] == [body["continue"]] and nxt["limit"] == ["4"]
        query = {"limit": "4", "continue": body["continue"]}
    assert seen == [o["id"] for o in full["data"]]
    assert pages == -(-len(seen) // 4)


def test_norman_scope_collections(world: World) -> None:
    cid = world.clusters()[-1]
    for pid in world.projects(cid):
        namespaces = {r.name for r in world.resources("namespace", cid) if world.project_of(r) == pid}
        pods = ok(world, f"/v3/project/{pid}/pods")
        assert {o["namespaceId"] for o in pods["data"]} <= namespaces
        assert all(
            o["projectId"] == pid and o["links"]["self"].startswith(f"{BASE}/v3/project/{pid}/pods/")
            for o in pods["data"]
        )
        assert ok(world, f"/v3/projects/{pid}/pods")["data"] == pods["data"]
        workloads = ok(world, f"/v3/project/{pid}/workloads")
        deployments = ok(world, f"/v3/project/{pid}/deployments")
        dep_ids = {o["id"] for o in deployments["data"]}
        assert dep_ids <= {o["id"] for o in workloads["data"]}
        assert all(o["id"].startswith("deployment:") and o["type"] == "deployment" for o in deployments["data"])
    all_pods = sum(len(ok(world, f"/v3/project/{p}/pods")["data"]) for p in world.projects(cid))
    assert all_pods == len(world.resources("pod", cid))
    nss = ok(world, f"/v3/cluster/{cid}/namespaces")
    assert {o["id"] for o in nss["data"]} == {r.name for r in world.resources("namespace", cid)}
    assert ok(world, f"/v3/clusters/{cid}/namespaces")["data"] == nss["data"]
    assert {o["id"] for o in ok(world, "/v3/projects", clusterId=cid)["data"]} == set(world.projects(cid))
    assert all(o["clusterId"] == cid for o in ok(world, f"/v3/clusters/{cid}/nodes")["data"])
    pid = world.projects(cid)[0]
    assert ok(world, f"/v3/projects/{pid}")["id"] == pid
    assert ok(world, f"/v3/clusters/{cid}")["id"] == cid
    assert get(world, "/v3/clusters/c-nope0")[0] == 404
    assert get(world, f"/v3/project/{cid}:p-nope0/pods")[0] == 404


def test_norman_paging_and_filters(world: World) -> None:
    full = ok(world, "/v3/nodes")
    page = ok(world, "/v3/nodes", limit="2")
    assert page["pagination"]["partial"] is True and page["pagination"]["total"] == len(full["data"])
    rest = ok(world, "/v3/nodes", limit="1000", marker=page["pagination"]["marker"])
    assert [o["id"] for o in page["data"] + rest["data"]] == [o["id"] for o in full["data"]]
    user = world.resources("management.cattle.io.user")[0].name
    tokens = ok(world, "/v3/tokens", userId=user)
    assert tokens["data"] and all(t["userId"] == user for t in tokens["data"])
    assert tokens["filters"]["userId"] == [{"modifier": "eq", "value": user}]


def test_settings_and_schemas(world: World) -> None:
    sv = ok(world, "/v3/settings/server-version")
    assert sv["id"] == "server-version" and sv["type"] == "setting" and sv["value"] == world.server_version == "v2.12.0"
    schemas = ok(world, "/v3/schemas")
    ids = {s["id"] for s in schemas["data"]}
    assert set(F.norman_schemas("global")) <= ids
    for s in schemas["data"]:
        assert {"id", "pluralName", "collectionMethods", "resourceFields", "links"} <= set(s)
    assert set(F.norman_schemas("project")) <= {s["id"] for s in ok(world, "/v3/project/schemas")["data"]}
    assert ok(World(0, server_version="v2.9.3"), "/v3/settings/server-version")["value"] == "v2.9.3"


# ----------------------------------------------------------------------------------------------- list + watch == truth


def _steve_apply(world: World, state: dict[str, Any], schema: str, cluster: str, since: int) -> None:
    for c in world.history:
        if c.revision <= since:
            continue
        view = F.steve_view(world, c.resource, schema, BASE, prefix(cluster))
        if view is None:
            continue
        if c.action == "DELETED":
            state.pop(view["id"], None)
        else:
            state[view["id"]] = view


def _without_age(o: dict[str, Any]) -> dict[str, Any]:
    """Ages in metadata.fields depend on when an object was formatted; everything else must match."""
    md = {k: v for k, v in o["metadata"].items() if k != "fields"}
    return {**o, "metadata": md}


@pytest.mark.parametrize(
    "schema",
    [
        "pod",
        "apps.deployment",
        "apps.replicaset",
        "namespace",
        "configmap",
        "secret",
        "node",
        "management.cattle.io.project",
        "management.cattle.io.node",
    ],
)
def test_steve_list_then_watch_equals_a_fresh_list(schema: str) -> None:
    w = World(33)
    for _ in range(50):
        w.step()
    clusters = ["local"] if schema.startswith("management.") else w.clusters()
    starts = {}
    for cluster in clusters:
        body = ok(w, f"{prefix(cluster)}/v1/{schema}")
        starts[cluster] = (int(body["revision"]), {o["id"]: o for o in body.get("data", [])})
    for _ in range(400):
        w.step()
    for cluster, (rev, state) in starts.items():
        _steve_apply(w, state, schema, cluster, rev)
        fresh = ok(w, f"{prefix(cluster)}/v1/{schema}")
        assert sorted(state) == [o["id"] for o in fresh.get("data", [])]
        for o in fresh.get("data", []):
            assert _without_age(state[o["id"]]) == _without_age(o)


def _norman_list_then_watch(w: World, scope: F.NormanScopeKind, scope_id: str | None, schema: str, path: str) -> None:
    body = ok(w, path)
    rev = w.revision  # Norman lists carry no revision: the caller knows when it listed
    state = {o["id"]: o for o in body["data"]}
    for _ in range(300):
        w.step()
    for c in w.history:
        if c.revision <= rev:
            continue
        for sch, obj in F.norman_views(w, c.resource, scope, scope_id, BASE):
            if sch != schema:
                continue
            if c.action == "DELETED":
                state.pop(obj["id"], None)
            else:
                state[obj["id"]] = obj
    fresh = {o["id"]: o for o in ok(w, path)["data"]}
    assert state == fresh


def test_norman_list_then_watch_equals_a_fresh_list() -> None:
    w = World(44)
    for _ in range(50):
        w.step()
    cid = w.clusters()[-1]
    _norman_list_then_watch(w, "global", None, "project", "/v3/projects")
    _norman_list_then_watch(w, "global", None, "node", "/v3/nodes")
    _norman_list_then_watch(w, "cluster", cid, "namespace", f"/v3/cluster/{cid}/namespaces")
    for pid in w.projects(cid)[:2]:
        for schema, plural in (
            ("pod", "pods"),
            ("workload", "workloads"),
            ("configMap", "configmaps"),
            ("namespacedSecret", "namespacedsecrets"),
        ):
            _norman_list_then_watch(w, "project", pid, schema, f"/v3/project/{pid}/{plural}")
