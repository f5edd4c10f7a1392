"""REST answers of the simulated Rancher: the lists a client takes before it subscribes.

Pure: a path and query in, a status and JSON body out. Every list item is exactly what `formats`
produces for the watch streams, so a client that lists and then applies events converges.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import quote, unquote, urlencode

from ..protocol import counts
from . import formats as F
from ._steve import count_object
from .formats import NormanScopeKind
from .world import Resource, World, iso

Body = dict[str, Any]
Reply = tuple[int, Body]

# Query parameters Norman reads for paging and sorting, never as field filters.
_NORMAN_CONTROL = {"limit", "marker", "sort", "order", "sockId", "_", "exclude", "include"}
_SORT_FIELDS = ("created", "description", "id", "name", "state", "transitioning", "transitioningMessage", "uuid")


def handle_rest(
    world: World, path: str, query: dict[str, list[str]], base_url: str, forbid: frozenset[str] = frozenset()
) -> Reply | None:
    """Status and JSON body for a REST path, or None when the path is not one this simulator serves.

    `forbid` holds the schema ids (Norman or Steve) the caller may not watch, as the socket refuses them: a Norman
    one is not among the caller's schemas at all, a Steve one may be listed and its schema has no `watch` verb
    (nor is it counted by `count`).
    """
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    if len(parts) >= 4 and parts[0] == "k8s" and parts[1] == "clusters" and parts[3] == "v1":
        cid = parts[2]
        if cid not in world.clusters():
            return 404, _steve_error(404, "NotFound", f"cluster {cid} not found")
        return _steve(world, parts[4:], query, base_url, f"/k8s/clusters/{cid}", forbid)
    if parts[:1] == ["v1"]:
        return _steve(world, parts[1:], query, base_url, "", forbid)
    if parts[:1] == ["v3"]:
        return _norman(world, parts[1:], query, base_url, forbid)
    return None


# ----------------------------------------------------------------------------------------------- Steve


def _steve_error(status: int, code: str, message: str) -> Body:
    # apiserver's ErrorHandler writes the numeric HTTP status here
    return {"type": "error", "links": {}, "code": code, "message": message, "status": status}


def _steve_schema_ids(cluster_prefix: str) -> list[str]:
    """Schemas a Steve serves: downstream clusters have no management.cattle.io types."""
    local = F.steve_cluster(cluster_prefix) == "local"
    return [s for s in F.steve_schemas() if local or not s.startswith("management.cattle.io.")]


def _steve_schema_object(schema_id: str, base_url: str, cluster_prefix: str, forbid: frozenset[str]) -> Body:
    self_url = f"{base_url}{cluster_prefix}/v1/schemas/{schema_id}"
    if schema_id == counts.TYPE:  # steve:pkg/resources/counts/counts.go `Register`: GET only, no attributes
        return {
            "id": schema_id,
            "type": "schema",
            "links": {"collection": f"{base_url}{cluster_prefix}/v1/{counts.PLURAL}", "self": self_url},
            "pluralName": counts.PLURAL,
            "resourceMethods": ["GET"],
            "collectionMethods": ["GET"],
            "resourceFields": None,
            "attributes": {},
        }
    s = F.steve_schemas()[schema_id]
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    return {
        "id": schema_id,
        "type": "schema",
        "links": {"collection": F.steve_url(base_url, cluster_prefix, schema_id), "self": self_url},
        "pluralName": s["plural"],
        "resourceMethods": ["GET", "DELETE", "PUT", "PATCH"],
        "collectionMethods": ["GET", "POST"],
        "resourceFields": None,
        "attributes": {
            "group": s["group"],
            "version": s["version"],
            "kind": s["kind"],
            "namespaced": s["namespaced"],
            "resource": s["plural"].rsplit(".", 1)[-1],
            # RBAC: a forbidden type may be listed but not watched, so its schema says so
            "verbs": [v for v in verbs if v != "watch"] if schema_id in forbid else verbs,
        },
    }


def _steve_lookup(name: str, ids: list[str]) -> str | None:
    """A Steve type by its id or its plural, ignoring case (apiserver's `LookupSchema`), `count` included."""
    if name.lower() in (counts.TYPE, counts.PLURAL):
        return counts.TYPE
    schema_id = F.steve_lookup(name)
    return schema_id if schema_id in ids else None


def _steve(
    world: World, parts: list[str], query: dict[str, list[str]], base_url: str, prefix: str, forbid: frozenset[str]
) -> Reply | None:
    if not parts:
        return None
    if parts[0].lower() == "schemas":
        ids = [*_steve_schema_ids(prefix), counts.TYPE]
        if len(parts) == 1:
            data = [_steve_schema_object(s, base_url, prefix, forbid) for s in ids]
            return 200, {
                "type": "collection",
                "links": {"self": f"{base_url}{prefix}/v1/schemas"},
                "createTypes": {},
                "actions": {},
                "resourceType": "schema",
                "count": len(data),
                "data": data,
            }
        sid = _steve_lookup(parts[1], ids)
        if len(parts) == 2 and sid is not None:
            return 200, _steve_schema_object(sid, base_url, prefix, forbid)
        return 404, _steve_error(404, "NotFound", "no such schema")
    schema_id = _steve_lookup(parts[0], _steve_schema_ids(prefix))
    if schema_id is None:
        return 404, _steve_error(404, "NotFound", f"schema {parts[0]} not found")
    if schema_id == counts.TYPE:
        return _steve_counts(world, parts[1:], base_url, prefix, forbid)
    namespaced = F.steve_schemas()[schema_id]["namespaced"]
    cluster = F.steve_cluster(prefix)
    rest = parts[1:]
    if len(rest) > (2 if namespaced else 1):
        return 404, _steve_error(404, "NotFound", "not found")
    if (namespaced and len(rest) == 2) or (not namespaced and len(rest) == 1):
        ns, name = (rest[0], rest[1]) if namespaced else (None, rest[0])
        res = world.get(schema_id, cluster, ns, name)
        view = F.steve_view(world, res, schema_id, base_url, prefix) if res else None
        if view is None:
            shown = f"{ns}/{name}" if ns else name
            return 404, _steve_error(
                404, "NotFound", f'{F.steve_schemas()[schema_id]["plural"].split(".")[-1]} "{shown}" not found'
            )
        return 200, view
    namespace = rest[0] if rest else None
    return 200, steve_list(world, schema_id, base_url, prefix, namespace=namespace, query=query)


def _steve_counts(world: World, rest: list[str], base_url: str, prefix: str, forbid: frozenset[str]) -> Reply:
    """`/v1/counts` lists the one count object (the whole map), `/v1/counts/<id>` is that object whatever the id
    (steve:pkg/resources/counts/counts.go, `Store.List` and `Store.ByID`)."""
    if len(rest) > 1:
        return 404, _steve_error(404, "NotFound", "not found")
    obj = count_object(world, F.steve_cluster(prefix), base_url, prefix, forbid=forbid)
    if rest:
        return 200, obj
    url = f"{base_url}{prefix}/v1/{counts.PLURAL}"
    return 200, {
        "type": "collection",
        "links": {"self": url},
        "createTypes": {},
        "actions": {},
        "resourceType": counts.TYPE,
        "count": 1,
        "data": [obj],
    }


def _sort_key(res: Resource) -> tuple[str, str]:
    return (res.namespace or "", res.name)


def _encode_token(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}/{key[1]}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    ns, _, name = raw.partition("/")
    return (ns, name)


def steve_list(
    world: World,
    schema_id: str,
    base_url: str,
    cluster_prefix: str = "",
    *,
    namespace: str | None = None,
    query: dict[str, list[str]] | None = None,
) -> Body:
    """A Steve collection (`GET /v1/<type>[/<namespace>]`), with `limit`/`continue` paging.

    The continue token names the last item returned, so a page boundary survives objects being added or
    removed between two requests.
    """
    query = query or {}
    cluster = F.steve_cluster(cluster_prefix)
    items = sorted(
        (r for r in world.resources(schema_id, cluster) if namespace is None or r.namespace == namespace),
        key=_sort_key,
    )
    total = len(items)
    after = _decode_token(query["continue"][0]) if query.get("continue") else None
    if after is not None:
        items = [r for r in items if _sort_key(r) > after]
    limit = _int(query.get("limit", [""])[0])
    page = items[:limit] if limit and limit > 0 else items
    coll_url = F.steve_url(base_url, cluster_prefix, schema_id)
    self_url = f"{coll_url}/{namespace}" if namespace else coll_url
    body: Body = {
        "type": "collection",
        "links": {"self": self_url},
        "createTypes": {schema_id: coll_url},
        "actions": {},
        "resourceType": schema_id,
        "revision": str(world.revision),
    }
    data = [v for r in page if (v := F.steve_view(world, r, schema_id, base_url, cluster_prefix)) is not None]
    if len(page) < len(items):
        token = _encode_token(_sort_key(page[-1]))
        params = {k: v for k, v in query.items() if k != "continue"}
        params["continue"] = [token]
        body["pagination"] = {"first": self_url, "next": f"{self_url}?{urlencode(params, doseq=True)}", "partial": True}
        body["continue"] = token
    if total:
        body["count"] = total
    if data:
        body["data"] = data  # an empty Steve list has no data key at all
    return body


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------- Norman


def _norman_error(status: int, code: str, message: str) -> Body:
    return {"baseType": "error", "code": code, "message": message, "status": status, "type": "error"}


def _by_name(schemas: list[str]) -> dict[str, str]:
    """A Norman type by its id or its plural, ignoring case (norman:`types/schemas.go` `doSchema`: EqualFold)."""
    return {F.NORMAN_PLURAL[s].lower(): s for s in schemas} | {s.lower(): s for s in schemas}


_GLOBAL_BY_NAME = _by_name(F.norman_schemas("global"))
_SCOPED_BY_NAME: dict[str, dict[str, str]] = {
    kind: _by_name(F.norman_schemas(kind))
    for kind in ("cluster", "project")  # type: ignore[arg-type]
}


def _norman_lookup(table: dict[str, str], name: str, forbid: frozenset[str]) -> str | None:
    schema = table.get(name.lower())
    return None if schema is None or schema in forbid else schema  # RBAC: a forbidden type is no schema at all


def _norman(
    world: World, parts: list[str], query: dict[str, list[str]], base_url: str, forbid: frozenset[str]
) -> Reply | None:
    if not parts:
        return None
    head = parts[0]
    if head == "settings":
        return _settings(world, parts[1:], base_url)
    if head == "schemas" and len(parts) <= 2:
        return _norman_schemas(world, "global", parts[1:], base_url, forbid)
    if head in ("cluster", "project") and len(parts) >= 2 and parts[1] == "schemas":
        return _norman_schemas(world, head, parts[2:], base_url, forbid)  # type: ignore[arg-type]
    if head in ("clusters", "cluster") and len(parts) >= 3:
        cid = parts[1]
        if cid not in world.clusters():
            return 404, _norman_error(404, "NotFound", f'clusters.management.cattle.io "{cid}" not found')
        sub = parts[2]
        if (schema := _norman_lookup(_SCOPED_BY_NAME["cluster"], sub, forbid)) is not None:
            return _norman_scoped(world, "cluster", cid, schema, parts[3:], query, base_url)
        if sub in ("nodes", "projects") and len(parts) == 3 and _GLOBAL_BY_NAME[sub] not in forbid:
            # the cluster's sub-context links to global types: the global list, filtered by clusterId
            return _norman_scoped(
                world, "global", None, _GLOBAL_BY_NAME[sub], [], {**query, "clusterId": [cid]}, base_url
            )
        return None
    if head in ("projects", "project") and len(parts) >= 3:
        pid = parts[1]
        cid = pid.split(":", 1)[0]
        if cid not in world.clusters() or pid not in world.projects(cid):
            return 404, _norman_error(404, "NotFound", f'projects.management.cattle.io "{pid}" not found')
        if (schema := _norman_lookup(_SCOPED_BY_NAME["project"], parts[2], forbid)) is not None:
            return _norman_scoped(world, "project", pid, schema, parts[3:], query, base_url)
        return None
    if len(parts) <= 2 and (schema := _norman_lookup(_GLOBAL_BY_NAME, head, forbid)) is not None:
        return _norman_scoped(world, "global", None, schema, parts[1:], query, base_url)
    return None


def norman_list(
    world: World,
    scope_kind: NormanScopeKind,
    scope_id: str | None,
    schema: str,
    base_url: str,
    query: dict[str, list[str]] | None = None,
) -> Body:
    """A Norman collection of one schema in one scope, filtered by field equality like `?clusterId=`."""
    query = query or {}
    filters = {k: v[0] for k, v in query.items() if k not in _NORMAN_CONTROL and v}
    items = []
    for res in world.resources():
        for sch, obj in F.norman_views(world, res, scope_kind, scope_id, base_url):
            if sch == schema and all(_field_eq(obj.get(k), v) for k, v in filters.items()):
                items.append(obj)
    items.sort(key=lambda o: str(o.get("id")))
    total = len(items)
    coll_url = F.norman_collection_url(base_url, scope_kind, scope_id, schema)
    marker = query.get("marker", [""])[0]
    if marker:
        items = [o for o in items if str(o.get("id")) > marker]
    limit = _int(query.get("limit", [""])[0]) or 1000
    page = items[:limit]
    pagination: Body = {"limit": limit, "total": total}
    if len(page) < len(items):
        params = {k: v for k, v in query.items() if k != "marker"}
        params["marker"] = [str(page[-1]["id"])]
        pagination.update(next=f"{coll_url}?{urlencode(params, doseq=True)}", partial=True, marker=str(page[-1]["id"]))
    self_url = coll_url + (f"?{urlencode({k: v for k, v in query.items()}, doseq=True)}" if query else "")
    return {
        "type": "collection",
        "links": {"self": self_url},
        "createTypes": {schema: coll_url} if schema != "workload" else {},
        "actions": {},
        "pagination": pagination,
        "sort": {
            "order": "asc",
            "reverse": f"{coll_url}?order=desc",
            "links": {f: f"{coll_url}?sort={f}" for f in _SORT_FIELDS},
        },
        "filters": {
            f: ([{"modifier": "eq", "value": filters[f]}] if f in filters else None)
            for f in sorted(
                {
                    "created",
                    "creatorId",
                    "id",
                    "name",
                    "removed",
                    "state",
                    "transitioning",
                    "transitioningMessage",
                    "uuid",
                    *filters,
                }
            )
        },
        "resourceType": schema,
        "data": page,
    }


def _field_eq(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return value is not None and str(value) == wanted


def _norman_scoped(
    world: World,
    scope_kind: NormanScopeKind,
    scope_id: str | None,
    schema: str,
    rest: list[str],
    query: dict[str, list[str]],
    base_url: str,
) -> Reply | None:
    if not rest:
        return 200, norman_list(world, scope_kind, scope_id, schema, base_url, query)
    if len(rest) > 1:
        return None
    wanted = rest[0]
    for res in world.resources():
        for sch, obj in F.norman_views(world, res, scope_kind, scope_id, base_url):
            if sch == schema and obj.get("id") == wanted:
                return 200, obj
    return 404, _norman_error(404, "NotFound", f"{wanted} not found")


def _settings(world: World, rest: list[str], base_url: str) -> Reply | None:
    settings = {"server-version": world.server_version}
    created = iso(world.now - 86400 * 30)

    def setting(name: str, value: str) -> Body:
        url = f"{base_url}/v3/settings/{name}"
        return {
            "actions": {},
            "baseType": "setting",
            "created": created,
            "createdTS": F._ts(created),
            "creatorId": None,
            "customized": False,
            "default": "",
            "id": name,
            "links": {"remove": url, "self": url, "update": url},
            "name": name,
            "source": "",
            "type": "setting",
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rancherlab/{world.seed}/setting/{name}")),
            "value": value,
        }

    if not rest:
        data = [setting(k, v) for k, v in settings.items()]
        url = f"{base_url}/v3/settings"
        return 200, {
            "type": "collection",
            "resourceType": "setting",
            "links": {"self": url},
            "createTypes": {"setting": url},
            "actions": {},
            "pagination": {"limit": 1000, "total": len(data)},
            "sort": {},
            "filters": {},
            "data": data,
        }
    if len(rest) == 1:
        if rest[0] in settings:
            return 200, setting(rest[0], settings[rest[0]])
        return 404, _norman_error(404, "NotFound", f'settings.management.cattle.io "{rest[0]}" not found')
    return None


def _norman_schemas(
    world: World, scope_kind: NormanScopeKind, rest: list[str], base_url: str, forbid: frozenset[str]
) -> Reply | None:
    version_path = "/v3" if scope_kind == "global" else f"/v3/{scope_kind}"
    # RBAC: a type the caller may not watch is not among its schemas, as the subscribe's `resourceTypes=` sees it
    ids = [s for s in F.norman_schemas(scope_kind) if s not in forbid] + ["subscribe"]

    def schema_obj(sid: str) -> Body:
        plural = F.NORMAN_PLURAL.get(sid, "subscribe" if sid == "subscribe" else sid + "s")
        return {
            "id": sid,
            "type": "schema",
            "baseType": "schema",
            "links": {
                "self": f"{base_url}{version_path}/schemas/{quote(sid)}",
                "collection": f"{base_url}{version_path}/{plural}",
            },
            "pluralName": plural if sid != "subscribe" else "subscribe",
            "collectionMethods": ["GET"] if sid in ("subscribe", "workload") else ["GET", "POST"],
            "resourceMethods": [] if sid == "subscribe" else ["GET", "PUT", "DELETE"],
            "resourceFields": {
                "id": {"type": "string", "nullable": False},
                "name": {"type": "string", "nullable": True},
                "state": {"type": "string", "nullable": True},
            },
            "version": {
                "group": {
                    "global": "management.cattle.io",
                    "cluster": "cluster.cattle.io",
                    "project": "project.cattle.io",
                }[scope_kind],
                "path": version_path,
                "version": "v3",
            },
        }

    if not rest:
        data = [schema_obj(s) for s in ids]
        url = f"{base_url}{version_path}/schemas"
        return 200, {
            "type": "collection",
            "resourceType": "schema",
            "links": {"self": url},
            "createTypes": {},
            "actions": {},
            "pagination": {"limit": 1000, "total": len(data)},
            "sort": {},
            "filters": {},
            "data": data,
        }
    if len(rest) == 1:
        wanted = _by_name([s for s in ids if s != "subscribe"]).get(rest[0].lower(), rest[0].lower())
        if wanted in ids:
            return 200, schema_obj(wanted)
        return 404, _norman_error(404, "NotFound", "no such schema")
    return None
