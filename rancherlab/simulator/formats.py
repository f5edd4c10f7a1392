"""How Norman (`/v3`) and Steve (`/v1`) show a stored object.

Both are pure functions of the object (plus the world's clock for ages and its namespace → project map),
so a REST list and a stream of watch events built from the same revisions always agree.
The field mapping follows the published Rancher objects in `shared/rancher-ws-samples`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from ..protocol._json import loads
from .world import CREATOR_ANNOTATION, MGMT_KINDS, Resource, World, parse_iso

NormanScopeKind = Literal["global", "cluster", "project"]

# ----------------------------------------------------------------------------------------------- schemas

_GLOBAL_SCHEMAS = ["cluster", "project", "node", "user", "token"]
_CLUSTER_SCHEMAS = ["namespace"]
_PROJECT_SCHEMAS = [
    "pod",
    "deployment",
    "replicaSet",
    "workload",
    "service",
    "configMap",
    "namespacedSecret",
    "namespacedBasicAuth",
    "namespacedCertificate",
    "namespacedDockerCredential",
    "namespacedSshAuth",
]
_MGMT_SCHEMA = {
    "management.cattle.io.cluster": "cluster",
    "management.cattle.io.project": "project",
    "management.cattle.io.node": "node",
    "management.cattle.io.user": "user",
    "management.cattle.io.token": "token",
}
_SECRET_SUBTYPE = {
    "kubernetes.io/basic-auth": "namespacedBasicAuth",
    "kubernetes.io/tls": "namespacedCertificate",
    "kubernetes.io/dockerconfigjson": "namespacedDockerCredential",
    "kubernetes.io/ssh-auth": "namespacedSshAuth",
}
# A Norman collection's URL segment is the lower-cased plural of the schema id.
NORMAN_PLURAL = {
    "cluster": "clusters",
    "project": "projects",
    "node": "nodes",
    "user": "users",
    "token": "tokens",
    "namespace": "namespaces",
    "pod": "pods",
    "deployment": "deployments",
    "replicaSet": "replicasets",
    "workload": "workloads",
    "service": "services",
    "configMap": "configmaps",
    "namespacedSecret": "namespacedsecrets",
    "namespacedBasicAuth": "namespacedbasicauths",
    "namespacedCertificate": "namespacedcertificates",
    "namespacedDockerCredential": "namespaceddockercredentials",
    "namespacedSshAuth": "namespacedsshauths",
}
NORMAN_BASE_TYPE = {
    "deployment": "workload",
    "replicaSet": "workload",
    "workload": "workload",
    **{s: "namespacedSecret" for s in _SECRET_SUBTYPE.values()},
}


def norman_schemas(scope_kind: NormanScopeKind) -> list[str]:
    """Watchable Norman schema ids of one API version (what `resourceTypes=` is matched against)."""
    return list({"global": _GLOBAL_SCHEMAS, "cluster": _CLUSTER_SCHEMAS, "project": _PROJECT_SCHEMAS}[scope_kind])


_STEVE: dict[str, tuple[str, bool, str, str, str]] = {
    # id: (plural, namespaced, group, version, kind)
    "namespace": ("namespaces", False, "", "v1", "Namespace"),
    "node": ("nodes", False, "", "v1", "Node"),
    "pod": ("pods", True, "", "v1", "Pod"),
    "service": ("services", True, "", "v1", "Service"),
    "configmap": ("configmaps", True, "", "v1", "ConfigMap"),
    "secret": ("secrets", True, "", "v1", "Secret"),
    "apps.deployment": ("apps.deployments", True, "apps", "v1", "Deployment"),
    "apps.replicaset": ("apps.replicasets", True, "apps", "v1", "ReplicaSet"),
    "management.cattle.io.cluster": ("management.cattle.io.clusters", False, "management.cattle.io", "v3", "Cluster"),
    "management.cattle.io.project": ("management.cattle.io.projects", True, "management.cattle.io", "v3", "Project"),
    "management.cattle.io.node": ("management.cattle.io.nodes", True, "management.cattle.io", "v3", "Node"),
    "management.cattle.io.user": ("management.cattle.io.users", False, "management.cattle.io", "v3", "User"),
    "management.cattle.io.token": ("management.cattle.io.tokens", False, "management.cattle.io", "v3", "Token"),
}
_STEVE_LOOKUP = {k.lower(): k for k in _STEVE} | {v[0].lower(): k for k, v in _STEVE.items()}
# Kubernetes' own resource names, for `links.view`.
_K8S_RESOURCE = {
    "namespace": "namespaces",
    "node": "nodes",
    "pod": "pods",
    "service": "services",
    "configmap": "configmaps",
    "secret": "secrets",
    "apps.deployment": "deployments",
    "apps.replicaset": "replicasets",
}


def steve_schemas() -> dict[str, dict[str, Any]]:
    """Steve schema id → plural, namespaced, group, version, kind."""
    return {
        k: {"plural": p, "namespaced": ns, "group": g, "version": v, "kind": kind}
        for k, (p, ns, g, v, kind) in _STEVE.items()
    }


def steve_lookup(name: str) -> str | None:
    """Schema id for a Steve type name, by id or plural and ignoring case, as apiserver's LookupSchema does."""
    return _STEVE_LOOKUP.get(name.lower())


def steve_cluster(cluster_prefix: str) -> str:
    """The cluster a Steve URL prefix serves ("" and /k8s/clusters/local are the local cluster)."""
    return cluster_prefix.rsplit("/", 1)[-1] if cluster_prefix else "local"


# ----------------------------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Summary:
    """What wrangler's summary computes: a lower-case state plus error/transitioning flags and a message."""

    state: str
    error: bool = False
    transitioning: bool = False
    message: str = ""


def _cond(obj: dict[str, Any], t: str, where: str = "status") -> dict[str, Any] | None:
    for c in (obj.get(where) or {}).get("conditions") or ():
        if c.get("type") == t:
            return c
    return None


def pod_status(pod: dict[str, Any]) -> str:
    """kubectl's STATUS column: the reason a container is waiting on, else the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    st = pod.get("status") or {}
    reason = st.get("phase") or "Unknown"
    for cs in st.get("containerStatuses") or ():
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason") or "Error"
    return reason


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def summarize(res: Resource) -> Summary:
    """State of an object as Rancher's summary shows it (shared by Norman and Steve)."""
    obj = res.obj
    deleting = bool(obj["metadata"].get("deletionTimestamp"))
    kind = res.kind
    if kind == "pod":
        status = pod_status(obj)
        msg = ""
        if status == "CrashLoopBackOff":
            cs = obj["status"]["containerStatuses"][0]
            msg = cs["state"]["waiting"].get("message", "")
        elif status in ("Pending", "ContainerCreating", "Error"):
            ready = _cond(obj, "Ready") or _cond(obj, "PodScheduled") or {}
            msg = ready.get("message", "")
        return Summary(
            _lower_first(status),
            error=status in ("CrashLoopBackOff", "Error"),
            transitioning=status in ("Pending", "ContainerCreating", "Terminating"),
            message=msg,
        )
    if deleting:
        return Summary("removing" if kind != "namespace" else "terminating", transitioning=True)
    if kind == "apps.deployment":
        st = obj.get("status") or {}
        avail = _cond(obj, "Available")
        prog = _cond(obj, "Progressing")
        if avail is not None and avail["status"] != "True":
            return Summary("updating", transitioning=True, message=avail["message"])
        if prog is not None and prog.get("reason") == "ReplicaSetUpdated":
            return Summary("updating", transitioning=True, message=prog["message"])
        if st.get("unavailableReplicas") or st.get("readyReplicas", 0) < (obj.get("spec") or {}).get("replicas", 0):
            return Summary("updating", transitioning=True, message="Deployment does not have minimum availability.")
        if st.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
            return Summary("updating", transitioning=True)
        return Summary("active")
    if kind == "apps.replicaset":
        want = obj["spec"].get("replicas", 0)
        ready = obj.get("status", {}).get("readyReplicas", 0)
        if ready < want:
            return Summary("updating", transitioning=True)
        return Summary("active")
    if kind in ("node", "management.cattle.io.node"):
        condition = _cond(obj, "Ready")
        if condition is not None and condition["status"] != "True":
            return Summary(
                "unavailable", error=True, message=condition.get("message") or "Kubelet stopped posting node status."
            )
        return Summary("active")
    if kind == "management.cattle.io.cluster":
        condition = _cond(obj, "Ready")
        if condition is None or condition["status"] != "True":
            return Summary("unavailable", error=True, message=(condition or {}).get("message", ""))
        return Summary("active")
    if kind in ("configmap", "secret"):
        return Summary("active", message="Resource is always ready")
    return Summary("active")


def _norman_state(s: Summary) -> dict[str, str]:
    return {
        "state": s.state.lower(),
        "transitioning": "error" if s.error else "yes" if s.transitioning else "no",
        "transitioningMessage": s.message,
    }


# ----------------------------------------------------------------------------------------------- helpers


def _ts(value: str | None) -> int | None:
    return int(parse_iso(value) * 1000) if value else None


def _with_ts(d: dict[str, Any], *fields: str) -> dict[str, Any]:
    """Norman adds `<field>TS` (epoch ms) beside each date of the schema."""
    out = dict(d)
    for f in fields:
        if out.get(f):
            out[f + "TS"] = _ts(out[f])
    return out


def _conds_ts(conds: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        _with_ts(c, "lastTransitionTime", "lastUpdateTime", "lastHeartbeatTime", "lastProbeTime") for c in conds or ()
    ]


def _b64d(s: str) -> str:
    return base64.b64decode(s).decode(errors="replace")


def human_age(seconds: float) -> str:
    """kubectl's short duration (`5s`, `3m20s`, `7h`, `2d4h`, `45d`)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    y = d // 365
    if d < 365 * 8:
        return f"{y}y{d % 365}d" if d % 365 else f"{y}y"
    return f"{y}y"


def _workload_id(world: World, res: Resource) -> str | None:
    """`deployment:ns:name` of the workload that owns a pod (through its replica set)."""
    for ref in res.obj["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == "ReplicaSet":
            rs = world.get("apps.replicaset", res.cluster, res.namespace, ref["name"])
            if rs is not None:
                for ref2 in rs.obj["metadata"].get("ownerReferences") or ():
                    return f"{ref2['kind'].lower()}:{res.namespace}:{ref2['name']}"
            # the replica set is gone (pod deleted after it): its name still says which deployment
            base = ref["name"].rsplit("-", 1)[0]
            return f"deployment:{res.namespace}:{base}"
        return f"{ref['kind'].lower()}:{res.namespace}:{ref['name']}"
    return None


# ----------------------------------------------------------------------------------------------- Norman


def norman_id(res: Resource) -> str:
    """The Norman id: workloads `type:ns:name`, namespaced `ns:name`, others `name`."""
    if res.kind in ("apps.deployment", "apps.replicaset"):
        return f"{res.kind.split('.')[1]}:{res.namespace}:{res.name}"
    if res.namespace:
        return f"{res.namespace}:{res.name}"
    return res.name


def norman_schema_of(res: Resource, scope_kind: NormanScopeKind) -> list[str]:
    """Norman schema ids whose stream in that API version carries this kind."""
    kind = res.kind
    if scope_kind == "global":
        return [_MGMT_SCHEMA[kind]] if kind in _MGMT_SCHEMA else []
    if scope_kind == "cluster":
        return ["namespace"] if kind == "namespace" else []
    if kind == "pod":
        return ["pod"]
    if kind == "apps.deployment":
        return ["deployment", "workload"]
    if kind == "apps.replicaset":
        return ["replicaSet", "workload"]
    if kind == "service":
        return ["service"]
    if kind == "configmap":
        return ["configMap"]
    if kind == "secret":
        return [_SECRET_SUBTYPE.get(res.obj.get("type", ""), "namespacedSecret")]
    return []


def norman_collection_url(base_url: str, scope_kind: NormanScopeKind, scope_id: str | None, schema: str) -> str:
    """Collection URL of a schema: `/v3/<plural>` globally, the singular version path inside scopes."""
    plural = NORMAN_PLURAL[schema]
    if scope_kind == "global":
        return f"{base_url}/v3/{plural}"
    return f"{base_url}/v3/{scope_kind}/{scope_id}/{plural}"


def norman_views(
    world: World, res: Resource, scope_kind: NormanScopeKind, scope_id: str | None, base_url: str
) -> list[tuple[str, dict[str, Any]]]:
    """Every (schema id, Norman object) under which this resource appears in that scope's stream."""
    if scope_kind == "global":
        if res.cluster != "local" or res.kind not in MGMT_KINDS:
            return []
    elif scope_kind == "cluster":
        if res.cluster != scope_id or res.kind not in ("namespace",):
            return []
    else:
        if scope_id is None or res.cluster != scope_id.split(":", 1)[0] or res.kind.startswith("management.cattle.io."):
            return []
        if res.namespace is None or world.project_of(res) != scope_id:
            return []
    out = []
    for schema in norman_schema_of(res, scope_kind):
        self_url = f"{norman_collection_url(base_url, scope_kind, scope_id, schema)}/{norman_id(res)}"
        out.append((schema, _norman_object(world, res, schema, self_url, base_url)))
    return out


def _norman_common(res: Resource, schema: str, self_url: str) -> dict[str, Any]:
    md = res.obj["metadata"]
    annotations = dict(md.get("annotations") or {})
    d: dict[str, Any] = {
        "id": norman_id(res),
        "type": schema,
        "baseType": NORMAN_BASE_TYPE.get(schema, schema),
        "name": md["name"],
        "uuid": md.get("uid"),
        "created": md.get("creationTimestamp"),
        "createdTS": _ts(md.get("creationTimestamp")),
        "creatorId": annotations.get(CREATOR_ANNOTATION),
        "labels": dict(md.get("labels") or {}),
        "annotations": annotations,
        "links": {"remove": self_url, "self": self_url, "update": self_url},
    }
    if md.get("namespace") is not None:
        d["namespaceId"] = md["namespace"]
    if md.get("deletionTimestamp"):
        d["removed"] = md["deletionTimestamp"]
        d["removedTS"] = _ts(md["deletionTimestamp"])
    return d


def _actions(self_url: str, *names: str) -> dict[str, str]:
    return {n: f"{self_url}?action={n}" for n in names}


def _norman_object(world: World, res: Resource, schema: str, self_url: str, base_url: str) -> dict[str, Any]:
    obj = res.obj
    d = _norman_common(res, schema, self_url)
    d.update(_norman_state(summarize(res)))
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kind = res.kind
    if kind == "management.cattle.io.cluster":
        cid = res.name
        base = f"{base_url}/v3/clusters/{cid}"
        d["name"] = spec.get("displayName") or cid
        d["links"].update(
            {
                sub: f"{base}/{sub.lower()}"
                for sub in (
                    "clusterAlertGroups",
                    "clusterRegistrationTokens",
                    "clusterRoleTemplateBindings",
                    "namespaces",
                    "nodePools",
                    "nodes",
                    "persistentVolumes",
                    "projects",
                    "storageClasses",
                    "subscribe",
                    "templates",
                )
            }
        )
        d["links"]["shell"] = f"{base.replace('https://', 'wss://').replace('http://', 'ws://')}?shell=true"
        d["actions"] = _actions(
            base,
            "backupEtcd",
            "exportYaml",
            "generateKubeconfig",
            "importYaml",
            "restoreFromEtcdBackup",
            "rotateCertificates",
            "rotateEncryptionKey",
            "saveAsTemplate",
        )
        d.update(
            agentImage=status.get("agentImage", ""),
            apiEndpoint=status.get("apiEndpoint", ""),
            caCert=status.get("caCert", ""),
            description=spec.get("description", ""),
            desiredAgentImage=spec.get("desiredAgentImage", ""),
            desiredAuthImage=spec.get("desiredAuthImage", ""),
            defaultClusterRoleForProjectMembers=spec.get("defaultClusterRoleForProjectMembers") or None,
            internal=spec.get("internal", False),
            driver=status.get("driver", ""),
            provider=status.get("provider", ""),
            fleetWorkspaceName=spec.get("fleetWorkspaceName", ""),
            localClusterAuthEndpoint={
                **spec.get("localClusterAuthEndpoint", {}),
                "type": "/v3/schemas/localClusterAuthEndpoint",
            },
            nodeCount=status.get("nodeCount", 0),
            capacity=status.get("capacity", {}),
            allocatable=status.get("allocatable", {}),
            requested=status.get("requested", {}),
            limits=status.get("limits", {}),
            componentStatuses=[
                {**c, "type": "/v3/schemas/clusterComponentStatus"} for c in status.get("componentStatuses", ())
            ],
            conditions=_conds_ts(status.get("conditions")),
            version={**status.get("version", {}), "type": "/v3/schemas/info"},
            appliedSpec={**spec, "type": "/v3/schemas/clusterSpec"},
        )
        return d
    if kind == "management.cattle.io.project":
        pid = f"{res.namespace}:{res.name}"
        base = f"{base_url}/v3/projects/{pid}"
        d["id"] = pid
        d["name"] = spec.get("displayName") or res.name
        d["namespaceId"] = None
        d["links"].update(
            {
                sub: f"{base}/{sub.lower()}"
                for sub in (
                    "basicAuths",
                    "certificates",
                    "configMaps",
                    "cronJobs",
                    "daemonSets",
                    "deployments",
                    "dnsRecords",
                    "dockerCredentials",
                    "horizontalPodAutoscalers",
                    "ingresses",
                    "jobs",
                    "namespacedBasicAuths",
                    "namespacedCertificates",
                    "namespacedDockerCredentials",
                    "namespacedSecrets",
                    "namespacedServiceAccountTokens",
                    "namespacedSshAuths",
                    "persistentVolumeClaims",
                    "pods",
                    "projectNetworkPolicies",
                    "projectRoleTemplateBindings",
                    "replicaSets",
                    "replicationControllers",
                    "secrets",
                    "serviceAccountTokens",
                    "services",
                    "sshAuths",
                    "statefulSets",
                    "subscribe",
                    "workloads",
                )
            }
        )
        d["actions"] = _actions(base, "exportYaml")
        rq = spec.get("resourceQuota") or {}
        d.update(
            clusterId=spec.get("clusterName", res.namespace),
            backingNamespace=status.get("backingNamespace", ""),
            description=spec.get("description", ""),
            resourceQuota={
                "limit": {**rq.get("limit", {}), "type": "/v3/schemas/resourceQuotaLimit"},
                "usedLimit": {**rq.get("usedLimit", {}), "type": "/v3/schemas/resourceQuotaLimit"},
                "type": "/v3/schemas/projectResourceQuota",
            },
            namespaceDefaultResourceQuota={
                "limit": {"type": "/v3/schemas/resourceQuotaLimit"},
                "type": "/v3/schemas/namespaceResourceQuota",
            },
            containerDefaultResourceLimit={
                **spec.get("containerDefaultResourceLimit", {}),
                "type": "/v3/schemas/containerResourceLimit",
            },
            conditions=_conds_ts(status.get("conditions")),
        )
        return d
    if kind == "management.cattle.io.node":
        nid = f"{res.namespace}:{res.name}"
        base = f"{base_url}/v3/nodes/{nid}"
        d["id"] = nid
        d["name"] = spec.get("displayName", "")
        d["namespaceId"] = None
        d["links"] = {"remove": base, "self": base, "update": base, "nodeConfig": f"{base}/nodeconfig"}
        internal = status.get("internalNodeStatus") or {}
        addrs = {a["type"]: a["address"] for a in internal.get("addresses", ())}
        info = internal.get("nodeInfo") or {}
        cap = internal.get("capacity") or {}
        unsched = bool((spec.get("internalNodeSpec") or {}).get("unschedulable"))
        d["actions"] = _actions(base, "drain", "scaledown") | _actions(base, "uncordon" if unsched else "cordon")
        d.update(
            clusterId=res.namespace,
            nodeName=status.get("nodeName", ""),
            hostname=addrs.get("Hostname", ""),
            ipAddress=addrs.get("InternalIP", ""),
            externalIpAddress=addrs.get("ExternalIP", ""),
            requestedHostname=spec.get("requestedHostname", ""),
            controlPlane=spec.get("controlPlane", False),
            etcd=spec.get("etcd", False),
            worker=spec.get("worker", False),
            imported=spec.get("imported", False),
            unschedulable=unsched,
            podCidr=(spec.get("internalNodeSpec") or {}).get("podCIDR", ""),
            providerId=(spec.get("internalNodeSpec") or {}).get("providerID", ""),
            nodePoolId="",
            nodeTemplateId=None,
            sshUser="",
            customConfig=None,
            dockerInfo=None,
            capacity=cap,
            allocatable=internal.get("allocatable") or {},
            requested=status.get("requested") or {},
            limits=status.get("limits") or {},
            info={
                "cpu": {"count": int(cap.get("cpu", "0"))},
                "kubernetes": {
                    "kubeProxyVersion": info.get("kubeProxyVersion", ""),
                    "kubeletVersion": info.get("kubeletVersion", ""),
                },
                "memory": {"memTotalKiB": int(str(cap.get("memory", "0")).rstrip("Ki") or 0)},
                "os": {
                    "dockerVersion": info.get("containerRuntimeVersion", ""),
                    "kernelVersion": info.get("kernelVersion", ""),
                    "operatingSystem": info.get("osImage", ""),
                },
            },
            taints=spec.get("taints") or [],
            publicEndpoints=[],
            conditions=_conds_ts(status.get("conditions")) + _conds_ts(internal.get("conditions")),
            labels={**d["labels"], **(status.get("nodeLabels") or {})},
            annotations={**d["annotations"], **(status.get("nodeAnnotations") or {})},
        )
        return d
    if kind == "management.cattle.io.user":
        base = f"{base_url}/v3/users/{res.name}"
        d["name"] = obj.get("displayName", "")
        d["links"].update(
            clusterRoleTemplateBindings=f"{base_url}/v3/clusterRoleTemplateBindings?userId={res.name}",
            globalRoleBindings=f"{base_url}/v3/globalRoleBindings?userId={res.name}",
            projectRoleTemplateBindings=f"{base_url}/v3/projectRoleTemplateBindings?userId={res.name}",
            tokens=f"{base_url}/v3/tokens?userId={res.name}",
        )
        d["actions"] = _actions(base, "refreshauthprovideraccess", "setpassword")
        d.update(
            description=obj.get("description", ""),
            enabled=obj.get("enabled", True),
            me=False,
            mustChangePassword=obj.get("mustChangePassword", False),
            principalIds=list(obj.get("principalIds", ())),
            username=obj.get("username", ""),
            conditions=_conds_ts(status.get("conditions")),
        )
        return d
    if kind == "management.cattle.io.token":
        # Tokens have no status: Norman shows no state for them, and never the secret value.
        for k in ("state", "transitioning", "transitioningMessage", "annotations"):
            d.pop(k, None)
        d.update(
            authProvider=obj.get("authProvider", ""),
            clusterId=obj.get("clusterName") or None,
            current=obj.get("current", False),
            description=obj.get("description", ""),
            enabled=obj.get("enabled", True),
            expired=obj.get("expired", False),
            expiresAt=obj.get("expiresAt", ""),
            isDerived=obj.get("isDerived", False),
            lastUpdateTime=obj.get("lastUpdateTime", ""),
            ttl=obj.get("ttl", 0),
            userId=obj.get("userId", ""),
            userPrincipal=obj.get("userPrincipal", ""),
        )
        return d
    # ------ cluster and project scoped Kubernetes objects
    project_id = world.project_of(res)
    if kind == "namespace":
        d["links"]["yaml"] = f"{self_url}/yaml"
        d["actions"] = _actions(self_url, "move")
        d.update(projectId=project_id, description="", resourceQuota=None, containerDefaultResourceLimit=None)
        return d
    d["projectId"] = project_id
    if kind == "pod":
        return _norman_pod(world, res, d)
    if kind in ("apps.deployment", "apps.replicaset"):
        return _norman_workload(res, d, schema, self_url)
    if kind == "service":
        d.update(
            kind=spec.get("type", "ClusterIP"),
            clusterIp=spec.get("clusterIP"),
            ports=[{**p, "type": "/v3/project/schemas/servicePort"} for p in spec.get("ports", ())],
            selector=dict(spec.get("selector") or {}),
            sessionAffinity=spec.get("sessionAffinity", "None"),
            targetDnsRecordIds=None,
            targetWorkloadIds=None,
            publicEndpoints=[],
            status={**status, "type": "/v3/project/schemas/serviceStatus"},
        )
        return d
    if kind == "configmap":
        d["data"] = dict(obj.get("data") or {})
        return d
    if kind == "secret":
        data = obj.get("data") or {}
        stype = obj.get("type", "Opaque")
        d["kind"] = stype  # Norman renames the secret's `type` field, which it needs for its own
        if schema == "namespacedBasicAuth":
            d.update(username=_b64d(data.get("username", "")), password=_b64d(data.get("password", "")))
        elif schema == "namespacedCertificate":
            d.update(
                certs=_b64d(data.get("tls.crt", "")),
                key=_b64d(data.get("tls.key", "")),
                cn="",
                issuer="",
                expiresAt=None,
                subjectAlternativeNames=[],
                keySize="2048",
                algorithm="RSA",
                version="3",
            )
        elif schema == "namespacedDockerCredential":
            auths = loads(_b64d(data.get(".dockerconfigjson", "e30="))).get("auths", {})
            d["registries"] = {
                h: {
                    "username": a.get("username", ""),
                    "password": a.get("password", ""),
                    "type": "/v3/project/schemas/registryCredential",
                }
                for h, a in auths.items()
            }
        elif schema == "namespacedSshAuth":
            d.update(privateKey=_b64d(data.get("ssh-privatekey", "")), fingerprint="")
        else:
            d["data"] = dict(data)
        return d
    return d


def _norman_pod(world: World, res: Resource, d: dict[str, Any]) -> dict[str, Any]:
    obj = res.obj
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    statuses = {cs["name"]: cs for cs in status.get("containerStatuses", ())}
    containers = []
    for c in spec.get("containers", ()):
        cs = statuses.get(c["name"], {})
        state = cs.get("state") or {}
        cstate, trans, msg = "waiting", "yes", ""
        if "running" in state:
            cstate, trans = "running", "no"
        elif "waiting" in state:
            cstate = _lower_first(state["waiting"].get("reason", "waiting")).lower()
            msg = state["waiting"].get("message", "")
            trans = "error" if cstate == "crashloopbackoff" else "yes"
        elif "terminated" in state:
            cstate, trans = "terminated", "error"
            msg = state["terminated"].get("reason", "")
        containers.append(
            {
                **{k: v for k, v in c.items() if k != "volumeMounts"},
                "initContainer": False,
                "restartCount": cs.get("restartCount", 0),
                "state": cstate,
                "transitioning": trans,
                "transitioningMessage": msg,
                "exitCode": (state.get("terminated") or {}).get("exitCode"),
                "type": "/v3/project/schemas/container",
            }
        )
    d.update(
        nodeId=world.node_id(res.cluster, spec.get("nodeName")),
        workloadId=_workload_id(world, res),
        containers=containers,
        dnsPolicy=spec.get("dnsPolicy"),
        restartPolicy=spec.get("restartPolicy"),
        schedulerName=spec.get("schedulerName"),
        serviceAccountName=spec.get("serviceAccountName"),
        terminationGracePeriodSeconds=spec.get("terminationGracePeriodSeconds"),
        hostIPC=False,
        hostNetwork=False,
        hostPID=False,
        publicEndpoints=[],
        status={
            "phase": status.get("phase"),
            "podIp": status.get("podIP"),
            "nodeIp": status.get("hostIP"),
            "qosClass": status.get("qosClass"),
            "startTime": status.get("startTime"),
            "startTimeTS": _ts(status.get("startTime")),
            "conditions": _conds_ts(status.get("conditions")),
            "type": "/v3/project/schemas/podStatus",
        },
    )
    return d


def _norman_workload(res: Resource, d: dict[str, Any], schema: str, self_url: str) -> dict[str, Any]:
    obj = res.obj
    md = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    tmpl = spec.get("template") or {}
    tspec = tmpl.get("spec") or {}
    # the concrete schema id ("replicaSet"); only the id's prefix is lower case ("replicaset:ns:name")
    kind = {"apps.deployment": "deployment", "apps.replicaset": "replicaSet"}[res.kind]
    # Norman shows a workload as its pod template: labels/annotations are the template's, the workload's own
    # metadata moves to workloadLabels/workloadAnnotations.
    d["type"] = kind
    d["baseType"] = "workload"
    d["labels"] = dict((tmpl.get("metadata") or {}).get("labels") or {})
    d["annotations"] = dict((tmpl.get("metadata") or {}).get("annotations") or {})
    d["workloadLabels"] = dict(md.get("labels") or {})
    d["workloadAnnotations"] = dict(md.get("annotations") or {})
    d["links"].update(revisions=f"{self_url}/revisions", yaml=f"{self_url}/yaml")
    d["actions"] = _actions(self_url, "pause", "redeploy", "resume", "rollback")
    d.update(
        scale=spec.get("replicas", 0),
        selector={**(spec.get("selector") or {}), "type": "/v3/project/schemas/labelSelector"},
        containers=[
            {**c, "initContainer": False, "restartCount": 0, "type": "/v3/project/schemas/container"}
            for c in tspec.get("containers", ())
        ],
        dnsPolicy=tspec.get("dnsPolicy"),
        restartPolicy=tspec.get("restartPolicy"),
        schedulerName=tspec.get("schedulerName"),
        terminationGracePeriodSeconds=tspec.get("terminationGracePeriodSeconds"),
        hostIPC=False,
        hostNetwork=False,
        hostPID=False,
        paused=bool(spec.get("paused", False)),
        publicEndpoints=[],
    )
    st = {k: v for k, v in status.items() if k != "conditions"}
    st["conditions"] = _conds_ts(status.get("conditions"))
    if kind == "deployment":
        strategy = spec.get("strategy") or {}
        ru = strategy.get("rollingUpdate") or {}
        d["deploymentConfig"] = {
            "maxSurge": ru.get("maxSurge"),
            "maxUnavailable": ru.get("maxUnavailable"),
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "progressDeadlineSeconds": spec.get("progressDeadlineSeconds"),
            "revisionHistoryLimit": spec.get("revisionHistoryLimit"),
            "strategy": strategy.get("type", "RollingUpdate"),
        }
        d["deploymentStatus"] = {**st, "type": "/v3/project/schemas/deploymentStatus"}
    else:
        d["replicaSetConfig"] = {"minReadySeconds": spec.get("minReadySeconds", 0)}
        d["replicaSetStatus"] = {**st, "type": "/v3/project/schemas/replicaSetStatus"}
        d["ownerReferences"] = [dict(o) for o in md.get("ownerReferences") or ()]
    return d


# ----------------------------------------------------------------------------------------------- Steve


def steve_id(res: Resource) -> str:
    return f"{res.namespace}/{res.name}" if res.namespace else res.name


def steve_url(base_url: str, cluster_prefix: str, schema_id: str, res: Resource | None = None) -> str:
    plural = _STEVE[schema_id][0]
    url = f"{base_url}{cluster_prefix}/v1/{plural}"
    if res is not None:
        url += f"/{steve_id(res)}"
    return url


def _view_url(base_url: str, cluster_prefix: str, schema_id: str, res: Resource) -> str:
    plural, namespaced, group, version, _ = _STEVE[schema_id]
    if group == "management.cattle.io":
        return f"{base_url}/v1/{plural}/{steve_id(res)}"
    root = (
        f"{base_url}{cluster_prefix}/api/{version}"
        if not group
        else f"{base_url}{cluster_prefix}/apis/{group}/{version}"
    )
    ns = f"/namespaces/{res.namespace}" if namespaced else ""
    return f"{root}{ns}/{_K8S_RESOURCE[schema_id]}/{res.name}"


def _fields(world: World, res: Resource) -> list[Any]:
    """The kubectl wide table row Steve copies into metadata.fields."""
    obj = res.obj
    md = obj["metadata"]
    age = human_age(world.now - parse_iso(md["creationTimestamp"])) if md.get("creationTimestamp") else "<unknown>"
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kind = res.kind
    if kind == "pod":
        css = status.get("containerStatuses") or []
        ready = sum(1 for c in css if c.get("ready"))
        restarts = sum(c.get("restartCount", 0) for c in css)
        return [
            md["name"],
            f"{ready}/{len(spec.get('containers', ()))}",
            pod_status(obj),
            str(restarts),
            age,
            status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>",
            "<none>",
            "<none>",
        ]
    if kind == "namespace":
        return [md["name"], status.get("phase", "Active"), age]
    if kind == "node":
        condition = _cond(obj, "Ready")
        st = "Ready" if condition and condition["status"] == "True" else "NotReady"
        if spec.get("unschedulable"):
            st += ",SchedulingDisabled"
        roles = sorted(k.split("/", 1)[1] for k in md.get("labels", {}) if k.startswith("node-role.kubernetes.io/"))
        info = status.get("nodeInfo") or {}
        addrs = {a["type"]: a["address"] for a in status.get("addresses", ())}
        return [
            md["name"],
            st,
            ",".join(roles) or "<none>",
            age,
            info.get("kubeletVersion", ""),
            addrs.get("InternalIP", "<none>"),
            addrs.get("ExternalIP", "<none>"),
            info.get("osImage", ""),
            info.get("kernelVersion", ""),
            info.get("containerRuntimeVersion", ""),
        ]
    if kind in ("apps.deployment", "apps.replicaset"):
        cs = ((spec.get("template") or {}).get("spec") or {}).get("containers", ())
        sel = ",".join(f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items())
        names, images = ",".join(c["name"] for c in cs), ",".join(c["image"] for c in cs)
        if kind == "apps.deployment":
            return [
                md["name"],
                f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
                status.get("updatedReplicas", 0),
                status.get("availableReplicas", 0),
                age,
                names,
                images,
                sel,
            ]
        return [
            md["name"],
            spec.get("replicas", 0),
            status.get("replicas", 0),
            status.get("readyReplicas", 0),
            age,
            names,
            images,
            sel,
        ]
    if kind == "service":
        ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports", ())) or "<none>"
        sel = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"
        return [md["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", "<none>"), "<none>", ports, age, sel]
    if kind == "configmap":
        return [md["name"], len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age]
    if kind == "secret":
        return [md["name"], obj.get("type", "Opaque"), len(obj.get("data") or {}), age]
    return [md["name"], age]


def _relationships(res: Resource) -> list[dict[str, Any]]:
    """Relationships that follow from the object itself (owners and what a pod uses)."""
    md = res.obj["metadata"]
    rels: list[dict[str, Any]] = []
    for ref in md.get("ownerReferences") or ():
        kind = ref["kind"].lower()
        ftype = f"apps.{kind}" if ref.get("apiVersion", "").startswith("apps/") else kind
        rels.append(
            {
                "fromId": f"{res.namespace}/{ref['name']}" if res.namespace else ref["name"],
                "fromType": ftype,
                "rel": "owner",
            }
        )
    if res.kind == "pod":
        spec = res.obj.get("spec") or {}
        rels.append(
            {
                "toId": f"{res.namespace}/{spec.get('serviceAccountName', 'default')}",
                "toType": "serviceaccount",
                "rel": "uses",
                "state": "active",
                "message": "Resource is current",
            }
        )
        for v in spec.get("volumes") or ():
            for src in (v.get("projected") or {}).get("sources") or ():
                if "configMap" in src:
                    rels.append(
                        {
                            "toId": f"{res.namespace}/{src['configMap']['name']}",
                            "toType": "configmap",
                            "rel": "uses",
                            "state": "active",
                            "message": "Resource is always ready",
                        }
                    )
    if res.kind in ("apps.deployment", "apps.replicaset") or (
        res.kind == "service" and (res.obj.get("spec") or {}).get("selector")
    ):
        spec = res.obj.get("spec") or {}
        labels = (spec.get("selector") or {}).get("matchLabels") if res.kind != "service" else spec.get("selector")
        sel = ",".join(f"{k}={v}" for k, v in (labels or {}).items())
        rels.append({"toType": "pod", "toNamespace": res.namespace, "rel": "selects", "selector": sel})
    return rels


_BAD_TRUE = {"ReplicaFailure", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}


def _normalize_conditions(conds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in conds:
        c = dict(c)
        c.setdefault("lastUpdateTime", c.get("lastTransitionTime", ""))
        status = c.get("status")
        err = (c.get("type") in _BAD_TRUE and status == "True") or (
            c.get("type") == "Progressing" and status == "False"
        )
        err = err or (c.get("type") == "Ready" and status == "Unknown" and "Kubelet" in c.get("message", ""))
        c["error"] = err
        c["transitioning"] = (
            not err
            and status in ("False", "Unknown")
            and c.get("type")
            in ("Ready", "ContainersReady", "Available", "PodScheduled", "Initialized", "PodReadyToStartContainers")
        )
        out.append(c)
    return out


def steve_view(
    world: World, res: Resource, schema_id: str, base_url: str, cluster_prefix: str = ""
) -> dict[str, Any] | None:
    """The Steve object for `res` under schema `schema_id`, or None when that schema/cluster does not show it."""
    if res.kind != schema_id or schema_id not in _STEVE or res.cluster != steve_cluster(cluster_prefix):
        return None
    obj = res.obj
    self_url = steve_url(base_url, cluster_prefix, schema_id, res)
    out: dict[str, Any] = {
        "id": steve_id(res),
        "type": schema_id,
        "links": {
            "patch": self_url,
            "remove": self_url,
            "self": self_url,
            "update": self_url,
            "view": _view_url(base_url, cluster_prefix, schema_id, res),
        },
    }
    for k, v in obj.items():
        out[f"_{k}" if k in ("id", "type", "links", "actions") else k] = v
    md = dict(obj["metadata"])
    s = summarize(res)
    md["fields"] = _fields(world, res)
    md["relationships"] = _relationships(res)
    md["state"] = {"error": s.error, "message": s.message, "name": s.state, "transitioning": s.transitioning}
    out["metadata"] = md
    status = obj.get("status")
    if isinstance(status, dict) and status.get("conditions"):
        out["status"] = {**status, "conditions": _normalize_conditions(status["conditions"])}
    return out
