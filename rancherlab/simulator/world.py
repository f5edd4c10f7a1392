"""A deterministic in-memory Rancher: management objects plus the Kubernetes objects of each cluster.

Everything comes from one seeded RNG and a simulated clock, so the same seed gives the same world and the
same sequence of changes, byte for byte. Objects are stored as plain Kubernetes objects (the way etcd has
them); `formats.py` turns them into what Norman and Steve show.
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..errors import UsageError
from ..protocol._json import dumps, loads

Action = Literal["ADDED", "MODIFIED", "DELETED"]

# Kubernetes' name generator alphabet (no vowels, no confusable digits); Rancher ids use it too.
_ALNUM = "bcdfghjklmnpqrstvwxz2456789"
_MAX_TASKS = 6
_T0 = 1751328000.0  # 2025-07-01T00:00:00Z: the simulated clock starts a few days after this

MGMT_KINDS = (
    "management.cattle.io.cluster",
    "management.cattle.io.project",
    "management.cattle.io.node",
    "management.cattle.io.user",
    "management.cattle.io.token",
)
PROJECT_ANNOTATION = "field.cattle.io/projectId"
CREATOR_ANNOTATION = "field.cattle.io/creatorId"

Key = tuple[str, str, str | None, str]


@dataclass
class Resource:
    """One object as stored: `obj` is the Kubernetes object, the other fields locate it."""

    kind: str
    cluster: str
    namespace: str | None
    name: str
    obj: dict[str, Any]

    @property
    def key(self) -> Key:
        return (self.kind, self.cluster, self.namespace, self.name)


@dataclass(frozen=True)
class Change:
    """One applied change; `resource` is a snapshot that later changes do not touch."""

    action: Action
    resource: Resource
    revision: int


def iso(t: float) -> str:
    """RFC 3339 seconds, the way Kubernetes writes timestamps."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _snapshot(obj: dict[str, Any]) -> dict[str, Any]:
    # JSON round trip (orjson): a deep copy an order of magnitude faster than copy.deepcopy
    return loads(dumps(obj))


Task = Iterator[None]


class World:
    """The simulated Rancher state; `step()` applies one deterministic bit of churn."""

    def __init__(self, seed: int = 0, *, server_version: str = "v2.12.0", history_limit: int | None = None) -> None:
        if history_limit is not None and history_limit < 1:
            raise UsageError("history_limit must be a positive number of changes, or None to keep every change")
        self.seed = seed
        self.server_version = server_version
        # `history` keeps the last `history_limit` changes (None: all), so a long-running world stays bounded;
        # `trimmed_revision` is the revision of the newest change let go (0: none), older ones cannot be replayed
        self.history_limit = history_limit
        self.trimmed_revision = 0
        self._rng = random.Random(seed)
        self.now: float = _T0 + self._rng.randint(3, 30) * 86400 + self._rng.randint(0, 86399)
        self.revision: int = self._rng.randint(1000, 9000)
        self.history: list[Change] = []
        self._objs: dict[Key, Resource] = {}
        self._children: dict[str, dict[Key, Resource]] = {}  # owner uid -> owned objects (ownerReferences never change)
        self._listeners: list[Callable[[Change], None]] = []
        self._tasks: list[Task] = []
        self._busy: set[Key] = set()  # deployments with a task in flight
        self._ns_project: dict[tuple[str, str], str] = {}  # survives namespace deletion, for late formatting
        self._node_ids: dict[tuple[str, str], str] = {}  # (cluster, k8s node name) -> "c-x:m-y"
        self._extra_ns: dict[str, list[str]] = {}  # namespaces created by churn, per cluster
        self._extra_projects: dict[str, list[str]] = {}
        self._ip = 10
        self.step_kinds: dict[str, int] = {}  # how often each churn action started (for tests and demos)
        self._build()

    # ------------------------------------------------------------------ queries

    def resources(self, kind: str | None = None, cluster: str | None = None) -> list[Resource]:
        """Current objects, in creation order. They are the live objects: read, do not mutate."""
        return [
            r
            for r in self._objs.values()
            if (kind is None or r.kind == kind) and (cluster is None or r.cluster == cluster)
        ]

    def get(self, kind: str, cluster: str, namespace: str | None, name: str) -> Resource | None:
        return self._objs.get((kind, cluster, namespace, name))

    def clusters(self) -> list[str]:
        return [r.name for r in self.resources("management.cattle.io.cluster")]

    def projects(self, cluster: str) -> list[str]:
        return [
            f"{cluster}:{r.name}"
            for r in self._objs.values()
            if r.kind == "management.cattle.io.project" and r.namespace == cluster
        ]

    def project_of(self, res: Resource) -> str | None:
        """The Norman project id that scopes `res`, or None (cluster-scoped and management objects)."""
        if res.kind == "management.cattle.io.project":
            return f"{res.namespace}:{res.name}"
        if res.kind == "namespace":
            return (res.obj["metadata"].get("annotations") or {}).get(PROJECT_ANNOTATION)
        if res.namespace is None or res.kind.startswith("management.cattle.io."):
            return None
        ns = self._objs.get(("namespace", res.cluster, None, res.namespace))
        if ns is not None:
            return (ns.obj["metadata"].get("annotations") or {}).get(PROJECT_ANNOTATION)
        return self._ns_project.get((res.cluster, res.namespace))

    def node_id(self, cluster: str, node_name: str | None) -> str | None:
        """Norman id (`c-x:m-y`) of the management node behind a Kubernetes node name."""
        return self._node_ids.get((cluster, node_name)) if node_name else None

    def history_for(self, kind: str, cluster: str | None = None) -> list[Change]:
        return [
            c for c in self.history if c.resource.kind == kind and (cluster is None or c.resource.cluster == cluster)
        ]

    def add_listener(self, fn: Callable[[Change], None]) -> Callable[[], None]:
        """Call `fn` synchronously for every later change; returns a function that unregisters it."""
        self._listeners.append(fn)

        def remove() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)

        return remove

    # ------------------------------------------------------------------ low-level mutation

    def _emit(self, action: Action, res: Resource) -> None:
        self.revision += 1
        res.obj["metadata"]["resourceVersion"] = str(self.revision)
        snap = Resource(res.kind, res.cluster, res.namespace, res.name, _snapshot(res.obj))
        change = Change(action, snap, self.revision)
        self.history.append(change)
        for fn in list(self._listeners):
            fn(change)

    def _add(self, kind: str, cluster: str, obj: dict[str, Any]) -> Resource:
        md = obj["metadata"]
        md.setdefault("uid", self._uid())
        md.setdefault("creationTimestamp", iso(self.now))
        res = Resource(kind, cluster, md.get("namespace"), md["name"], obj)
        self._objs[res.key] = res
        for ref in md.get("ownerReferences") or ():
            self._children.setdefault(ref["uid"], {})[res.key] = res
        if kind == "namespace":
            pid = (md.get("annotations") or {}).get(PROJECT_ANNOTATION)
            if pid:
                self._ns_project[(cluster, md["name"])] = pid
        self._emit("ADDED", res)
        return res

    def _modified(self, res: Resource) -> None:
        """Record an in-place edit of `res.obj` as a MODIFIED change."""
        self._emit("MODIFIED", res)

    def _delete(self, res: Resource) -> None:
        self._objs.pop(res.key, None)
        for ref in res.obj["metadata"].get("ownerReferences") or ():
            self._children.get(ref["uid"], {}).pop(res.key, None)
        self._children.pop(res.obj["metadata"]["uid"], None)
        self._emit("DELETED", res)

    # ------------------------------------------------------------------ random helpers

    def _name(self, n: int = 5) -> str:
        return "".join(self._rng.choice(_ALNUM) for _ in range(n))

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _b64(self, s: str | bytes) -> str:
        return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()

    def _pem(self, label: str, nbytes: int) -> str:
        body = base64.b64encode(self._rng.randbytes(nbytes)).decode()
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"

    def _pod_ip(self) -> str:
        self._ip += 1
        return f"10.42.{(self._ip // 250) % 250}.{self._ip % 250 + 2}"

    def _past(self, lo_days: float, hi_days: float) -> str:
        return iso(self.now - self._rng.uniform(lo_days, hi_days) * 86400)

    # ------------------------------------------------------------------ initial world

    def _build(self) -> None:
        rng = self._rng
        admin = "user-" + self._name()
        self.admin_id = admin
        users = [(admin, "admin", "Default Admin")]
        for uname, display in rng.sample([("alice", "Alice Martin"), ("bob", "Bob Chen"), ("carol", "Carol Diaz")], 2):
            users.append(("u-" + self._name(), uname, display))
        for uid_, uname, display in users:
            self._add_user(uid_, uname, display)
        for uid_, _, _ in users:
            self._add_token(uid_, kubeconfig=False)
        self._add_token(admin, kubeconfig=True)

        cluster_ids = ["local"] + ["c-" + self._name() for _ in range(rng.randint(1, 2))]
        for cid in cluster_ids:
            self._build_cluster(cid)

    def _add_user(self, uid_: str, username: str, display: str) -> None:
        self._add(
            "management.cattle.io.user",
            "local",
            {
                "apiVersion": "management.cattle.io/v3",
                "kind": "User",
                "metadata": {
                    "name": uid_,
                    "creationTimestamp": self._past(20, 60),
                    "labels": {"cattle.io/creator": "norman"},
                    "annotations": {"lifecycle.cattle.io/create.mgmt-auth-users-controller": "true"},
                    "finalizers": ["controller.cattle.io/mgmt-auth-users-controller"],
                },
                "description": "",
                "displayName": display,
                "username": username,
                "password": "$2a$10$" + self._b64(self._rng.randbytes(39))[:53],
                "mustChangePassword": False,
                "principalIds": [f"local://{uid_}"],
                "enabled": True,
                "spec": {},
                "status": {
                    "conditions": [
                        {"type": "InitialRolesPopulated", "status": "True", "lastUpdateTime": self._past(20, 60)}
                    ]
                },
            },
        )

    def _add_token(self, user_id: str, *, kubeconfig: bool) -> None:
        user = self._objs[("management.cattle.io.user", "local", None, user_id)]
        name = f"kubeconfig-{user_id}" if kubeconfig else "token-" + self._name()
        created = self._past(1, 20)
        ttl = 2592000000 if kubeconfig else 0
        principal = (
            f"map[displayName:{user.obj['displayName']} loginName:{user.obj['username']} me:true "
            f"metadata:map[creationTimestamp:<nil> name:local://{user_id}] principalType:user provider:local]"
        )
        labels = {"authn.management.cattle.io/token-userId": user_id, "cattle.io/creator": "norman"}
        if kubeconfig:
            labels["authn.management.cattle.io/kind"] = "kubeconfig"
        self._add(
            "management.cattle.io.token",
            "local",
            {
                "apiVersion": "management.cattle.io/v3",
                "kind": "Token",
                "metadata": {"name": name, "creationTimestamp": created, "labels": labels},
                "authProvider": "local",
                "current": False,
                "description": "Kubeconfig token" if kubeconfig else "",
                "enabled": True,
                "expired": False,
                "expiresAt": iso(parse_iso(created) + ttl / 1000) if ttl else "",
                "isDerived": kubeconfig,
                "lastUpdateTime": "",
                "token": self._name(54),
                "ttl": ttl,
                "userId": user_id,
                "userPrincipal": principal,
                "clusterName": "",
            },
        )

    def _build_cluster(self, cid: str) -> None:
        rng = self._rng
        local = cid == "local"
        k8s = rng.choice(["v1.31.9+rke2r1", "v1.32.5+rke2r1", "v1.31.9+k3s1"])
        provider = "k3s" if "k3s" in k8s else "rke2"
        nnodes = 1 if local else rng.randint(2, 3)
        created = self._past(30, 90)
        self._add(
            "management.cattle.io.cluster",
            "local",
            {
                "apiVersion": "management.cattle.io/v3",
                "kind": "Cluster",
                "metadata": {
                    "name": cid,
                    "creationTimestamp": created,
                    "labels": {"provider.cattle.io": provider},
                    "annotations": {
                        CREATOR_ANNOTATION: self.admin_id,
                        "lifecycle.cattle.io/create.cluster-agent-controller-cleanup": "true",
                        "lifecycle.cattle.io/create.mgmt-cluster-rbac-remove": "true",
                    },
                    "finalizers": ["wrangler.cattle.io/mgmt-cluster-remove"],
                },
                "spec": {
                    "displayName": cid
                    if local
                    else rng.choice(["prod-eu", "staging", "edge-lab", "dev-us"]) + f"-{cid[2:4]}",
                    "description": "",
                    "internal": local,
                    "desiredAgentImage": "",
                    "desiredAuthImage": "",
                    "defaultClusterRoleForProjectMembers": "",
                    "fleetWorkspaceName": "fleet-local" if local else "fleet-default",
                    "localClusterAuthEndpoint": {"enabled": False},
                },
                "status": {
                    "agentImage": f"rancher/rancher-agent:{self.server_version}",
                    "apiEndpoint": "https://10.43.0.1:443"
                    if local
                    else f"https://172.31.{rng.randint(1, 250)}.{rng.randint(2, 250)}:6443",
                    "caCert": self._b64(self._pem("CERTIFICATE", 480)),
                    "driver": "imported" if local else provider,
                    "provider": provider,
                    "version": {
                        "buildDate": "2025-05-15T18:35:12Z",
                        "compiler": "gc",
                        "gitCommit": self._hex(40),
                        "gitTreeState": "clean",
                        "gitVersion": k8s,
                        "goVersion": "go1.23.8",
                        "major": "1",
                        "minor": k8s.split(".")[1],
                        "platform": "linux/amd64",
                    },
                    "nodeCount": nnodes,
                    "capacity": {"cpu": str(4 * nnodes), "memory": f"{16305160 * nnodes}Ki", "pods": str(110 * nnodes)},
                    "allocatable": {
                        "cpu": str(4 * nnodes),
                        "memory": f"{16202760 * nnodes}Ki",
                        "pods": str(110 * nnodes),
                    },
                    "requested": {
                        "cpu": f"{rng.randint(600, 1900)}m",
                        "memory": f"{rng.randint(300, 2000)}Mi",
                        "pods": "0",
                    },
                    "limits": {
                        "cpu": f"{rng.randint(100, 900)}m",
                        "memory": f"{rng.randint(300, 3000)}Mi",
                        "pods": "0",
                    },
                    "componentStatuses": [
                        {"name": n, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]}
                        for n in ("controller-manager", "etcd-0", "scheduler")
                    ],
                    "conditions": [
                        {"type": t, "status": "True", "lastUpdateTime": created}
                        for t in (
                            "BackingNamespaceCreated",
                            "DefaultProjectCreated",
                            "SystemProjectCreated",
                            "InitialRolesPopulated",
                            "CreatorMadeOwner",
                            "Provisioned",
                            "Waiting",
                            "Connected",
                            "Ready",
                            "Updated",
                            "AgentDeployed",
                        )
                    ],
                },
            },
        )
        default_p = self._add_project(cid, "Default", created=created)
        system_p = self._add_project(cid, "System", created=created)
        app_p = (
            default_p
            if local
            else self._add_project(cid, rng.choice(["apps", "team-blue", "payments"]), created=created)
        )

        node_names = []
        for i in range(nnodes):
            node_names.append(self._add_nodes(cid, local, provider, k8s, i, created))

        for ns, pid in (("default", default_p), ("kube-system", system_p), ("cattle-system", system_p)):
            self._add_namespace(cid, ns, pid, created=created, system=pid == system_p)
        app_nss = [rng.choice(["shop", "blog", "web"]) + "-" + rng.choice(["prod", "dev"])]
        if not local:
            app_nss.append(rng.choice(["monitoring-demo", "batch", "api"]))
        for i, ns in enumerate(app_nss):
            self._add_namespace(cid, ns, default_p if i == 0 else app_p, created=self._past(5, 25))

        self._add_service(cid, "default", "kubernetes", None, 443, cluster_ip="10.43.0.1")
        self._add_deployment(
            cid,
            "kube-system",
            "coredns",
            "rancher/mirrored-coredns-coredns:1.12.0",
            1 if local else 2,
            node_names,
            port=53,
        )
        self._add_service(cid, "kube-system", "kube-dns", "coredns", 53, cluster_ip="10.43.0.10")
        self._add_configmap(
            cid,
            "kube-system",
            "coredns",
            {
                "Corefile": ".:53 {\n    errors\n    health\n    ready\n    forward . /etc/resolv.conf\n    cache 30\n}\n"
            },
        )
        if local:
            self._add_deployment(
                cid, "cattle-system", "rancher", f"rancher/rancher:{self.server_version}", 1, node_names, port=80
            )
            self._add_service(cid, "cattle-system", "rancher", "rancher", 80)
        else:
            self._add_deployment(
                cid,
                "cattle-system",
                "cattle-cluster-agent",
                f"rancher/rancher-agent:{self.server_version}",
                1,
                node_names,
                port=None,
            )
            self._add_service(cid, "cattle-system", "cattle-cluster-agent", "cattle-cluster-agent", 80)
        self._add_secret(cid, "cattle-system", "cattle-credentials-" + self._name(7), "Opaque")
        for ns in app_nss:
            for app, image, port in rng.sample(
                [
                    ("web", "nginx:1.27.5", 80),
                    ("api", "ghcr.io/acme/api:1.4.2", 8080),
                    ("worker", "ghcr.io/acme/worker:2.0.1", None),
                    ("cache", "redis:7.4", 6379),
                ],
                2,
            ):
                self._add_deployment(cid, ns, app, image, rng.randint(1, 3), node_names, port=port)
                if port:
                    self._add_service(cid, ns, app, app, port)
            self._add_configmap(cid, ns, "app-settings", {"LOG_LEVEL": "info", "FEATURE_FLAGS": "search,checkout"})
        # all secret types, spread over the app namespaces
        for i, stype in enumerate(
            (
                "Opaque",
                "kubernetes.io/tls",
                "kubernetes.io/dockerconfigjson",
                "kubernetes.io/basic-auth",
                "kubernetes.io/ssh-auth",
            )
        ):
            ns = app_nss[i % len(app_nss)]
            name = {
                "Opaque": "app-secrets",
                "kubernetes.io/tls": "web-tls",
                "kubernetes.io/dockerconfigjson": "registry-creds",
                "kubernetes.io/basic-auth": "db-login",
                "kubernetes.io/ssh-auth": "git-deploy-key",
            }[stype]
            self._add_secret(cid, ns, name, stype)

    def _add_project(self, cid: str, display: str, *, created: str | None = None) -> str:
        pid = "p-" + self._name()
        annotations = {CREATOR_ANNOTATION: self.admin_id}
        labels = {"cattle.io/creator": "norman"}
        if display == "Default":
            labels["authz.management.cattle.io/default-project"] = "true"
        if display == "System":
            labels["authz.management.cattle.io/system-project"] = "true"
        when = created or iso(self.now)
        self._add(
            "management.cattle.io.project",
            "local",
            {
                "apiVersion": "management.cattle.io/v3",
                "kind": "Project",
                "metadata": {
                    "name": pid,
                    "namespace": cid,
                    "creationTimestamp": when,
                    "generateName": "p-",
                    "labels": labels,
                    "annotations": annotations,
                    "finalizers": ["controller.cattle.io/mgmt-project-rbac-remove"],
                },
                "spec": {
                    "clusterName": cid,
                    "displayName": display,
                    "description": f"{display} project created for the cluster"
                    if display in ("Default", "System")
                    else "",
                    "resourceQuota": {"limit": {}, "usedLimit": {}},
                    "namespaceDefaultResourceQuota": {"limit": {}},
                    "containerDefaultResourceLimit": {},
                },
                "status": {
                    "backingNamespace": f"{cid}-{pid}",
                    "conditions": [
                        {"type": t, "status": "True", "lastUpdateTime": when}
                        for t in ("BackingNamespaceCreated", "InitialRolesPopulated", "CreatorMadeOwner")
                    ],
                },
            },
        )
        return f"{cid}:{pid}"

    def _add_nodes(self, cid: str, local: bool, provider: str, k8s: str, i: int, created: str) -> str:
        rng = self._rng
        ip = f"172.31.{rng.randint(1, 250)}.{rng.randint(2, 250)}"
        node_name = "ip-" + ip.replace(".", "-")
        roles = ("controlplane", "etcd", "worker") if (local or i == 0) else ("worker",)
        mid = "m-" + self._hex(12)
        self._node_ids[(cid, node_name)] = f"{cid}:{mid}"
        capacity = {
            "cpu": "4",
            "ephemeral-storage": "81106868Ki",
            "hugepages-2Mi": "0",
            "memory": "16305160Ki",
            "pods": "110",
        }
        allocatable = {
            "cpu": "4",
            "ephemeral-storage": "78900219993",
            "hugepages-2Mi": "0",
            "memory": "16202760Ki",
            "pods": "110",
        }
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
        }
        for role in roles:
            labels[f"node-role.kubernetes.io/{'control-plane' if role == 'controlplane' else role}"] = "true"
        info = {
            "architecture": "amd64",
            "bootID": self._uid(),
            "containerRuntimeVersion": "containerd://2.0.5-k3s1",
            "kernelVersion": "6.8.0-1029-aws",
            "kubeProxyVersion": k8s,
            "kubeletVersion": k8s,
            "machineID": self._hex(32),
            "operatingSystem": "linux",
            "osImage": "Ubuntu 24.04.2 LTS",
            "systemUUID": self._uid(),
        }
        conditions = self._node_conditions(True, created)
        self._add(
            "node",
            cid,
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node_name,
                    "creationTimestamp": created,
                    "labels": dict(labels),
                    "annotations": {
                        "node.alpha.kubernetes.io/ttl": "0",
                        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                        f"{provider}.io/internal-ip": ip,
                        "management.cattle.io/pod-limits": "{}",
                    },
                },
                "spec": {
                    "podCIDR": f"10.42.{i}.0/24",
                    "podCIDRs": [f"10.42.{i}.0/24"],
                    "providerID": f"{provider}://{node_name}",
                },
                "status": {
                    "addresses": [{"address": ip, "type": "InternalIP"}, {"address": node_name, "type": "Hostname"}],
                    "allocatable": allocatable,
                    "capacity": capacity,
                    "conditions": conditions,
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": info,
                },
            },
        )
        self._add(
            "management.cattle.io.node",
            "local",
            {
                "apiVersion": "management.cattle.io/v3",
                "kind": "Node",
                "metadata": {
                    "name": mid,
                    "namespace": cid,
                    "generateName": "m-",
                    "creationTimestamp": created,
                    "labels": {"cattle.io/creator": "norman", "management.cattle.io/nodename": node_name},
                    "annotations": {"lifecycle.cattle.io/create.node-controller": "true"},
                    "finalizers": ["controller.cattle.io/node-controller"],
                },
                "spec": {
                    "controlPlane": "controlplane" in roles,
                    "etcd": "etcd" in roles,
                    "worker": "worker" in roles,
                    "imported": True,
                    "requestedHostname": node_name,
                    "displayName": "",
                    "desiredNodeUnschedulable": "",
                    "internalNodeSpec": {"podCIDR": f"10.42.{i}.0/24", "providerID": f"{provider}://{node_name}"},
                },
                "status": {
                    "nodeName": node_name,
                    "internalNodeStatus": {
                        "addresses": [
                            {"address": ip, "type": "InternalIP"},
                            {"address": node_name, "type": "Hostname"},
                        ],
                        "allocatable": allocatable,
                        "capacity": capacity,
                        "conditions": _snapshot({"c": conditions})["c"],
                        "nodeInfo": info,
                    },
                    "nodeLabels": labels,
                    "nodeAnnotations": {f"{provider}.io/internal-ip": ip},
                    "requested": {
                        "cpu": f"{rng.randint(300, 1500)}m",
                        "memory": f"{rng.randint(200, 900)}Mi",
                        "pods": "0",
                    },
                    "limits": {"cpu": f"{rng.randint(100, 600)}m", "memory": f"{rng.randint(300, 1800)}Mi"},
                    "conditions": [
                        {"type": "Initialized", "status": "True"},
                        {"type": "Registered", "status": "True", "message": "registered with kubernetes"},
                        {"type": "Provisioned", "status": "True"},
                        {"type": "Ready", "status": "True", "lastUpdateTime": created},
                    ],
                },
            },
        )
        return node_name

    def _node_conditions(self, ready: bool, when: str) -> list[dict[str, Any]]:
        def cond(t: str, status: str, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": t,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": iso(self.now),
                "lastTransitionTime": when,
            }

        if ready:
            ready_cond = cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        else:
            ready_cond = cond("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        return [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ready_cond,
        ]

    def _add_namespace(
        self, cid: str, ns: str, pid: str, *, created: str | None = None, system: bool = False
    ) -> Resource:
        annotations = {PROJECT_ANNOTATION: pid, "lifecycle.cattle.io/create.namespace-auth": "true"}
        if system:
            annotations["management.cattle.io/system-namespace"] = "true"
        res = self._add(
            "namespace",
            cid,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "creationTimestamp": created or iso(self.now),
                    "labels": {"kubernetes.io/metadata.name": ns, PROJECT_ANNOTATION: pid.split(":")[1]},
                    "annotations": annotations,
                    "finalizers": ["controller.cattle.io/namespace-auth"],
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )
        self._add_configmap(cid, ns, "kube-root-ca.crt", {"ca.crt": self._pem("CERTIFICATE", 360)}, created=created)
        return res

    def _add_service(
        self, cid: str, ns: str, name: str, app: str | None, port: int, cluster_ip: str | None = None
    ) -> None:
        spec: dict[str, Any] = {
            "clusterIP": cluster_ip or f"10.43.{self._rng.randint(0, 255)}.{self._rng.randint(2, 254)}",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": f"{port}tcp", "port": port, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        }
        spec["clusterIPs"] = [spec["clusterIP"]]
        if app:
            spec["selector"] = {"workload.user.cattle.io/workloadselector": f"apps.deployment-{ns}-{app}"}
        self._add(
            "service",
            cid,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "creationTimestamp": self._past(2, 20),
                    "labels": {},
                    "annotations": {},
                },
                "spec": spec,
                "status": {"loadBalancer": {}},
            },
        )

    def _add_configmap(
        self, cid: str, ns: str, name: str, data: dict[str, str], created: str | None = None
    ) -> Resource:
        return self._add(
            "configmap",
            cid,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "creationTimestamp": created or iso(self.now),
                    "annotations": {} if name == "kube-root-ca.crt" else {CREATOR_ANNOTATION: self.admin_id},
                },
                "data": data,
            },
        )

    def _secret_data(self, stype: str, name: str) -> dict[str, str]:
        rng = self._rng
        if stype == "kubernetes.io/tls":
            return {
                "tls.crt": self._b64(self._pem("CERTIFICATE", 700)),
                "tls.key": self._b64(self._pem("PRIVATE KEY", 900)),
            }
        if stype == "kubernetes.io/dockerconfigjson":
            user, pw = rng.choice(["robot", "ci-bot", "deploy"]), self._name(20)
            auth = self._b64(f"{user}:{pw}")
            cfg = {"auths": {"registry.example.com": {"username": user, "password": pw, "auth": auth}}}
            return {".dockerconfigjson": self._b64(dumps(cfg))}
        if stype == "kubernetes.io/basic-auth":
            return {
                "username": self._b64(rng.choice(["app", "postgres", "svc-orders"])),
                "password": self._b64(self._name(24)),
            }
        if stype == "kubernetes.io/ssh-auth":
            return {"ssh-privatekey": self._b64(self._pem("OPENSSH PRIVATE KEY", 300))}
        return {
            "API_KEY": self._b64(self._name(32)),
            "DATABASE_URL": self._b64(f"postgres://app:{self._name(16)}@db:5432/{name}"),
        }

    def _add_secret(self, cid: str, ns: str, name: str, stype: str) -> Resource:
        return self._add(
            "secret",
            cid,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "creationTimestamp": iso(self.now),
                    "labels": {"cattle.io/creator": "norman"},
                    "annotations": {CREATOR_ANNOTATION: self.admin_id},
                },
                "type": stype,
                "data": self._secret_data(stype, name),
            },
        )

    # ------------------------------------------------------------------ workloads

    def _selector(self, ns: str, name: str) -> str:
        return f"apps.deployment-{ns}-{name}"

    def _add_deployment(
        self, cid: str, ns: str, name: str, image: str, replicas: int, nodes: list[str], port: int | None
    ) -> None:
        sel = {"workload.user.cattle.io/workloadselector": self._selector(ns, name)}
        container: dict[str, Any] = {
            "name": "container-0",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
        if port:
            container["ports"] = [{"containerPort": port, "name": f"{port}tcp", "protocol": "TCP"}]
        created = self._past(1, 20)
        dep = self._add(
            "apps.deployment",
            cid,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "creationTimestamp": created,
                    "generation": 1,
                    "labels": {"workload.user.cattle.io/workloadselector": self._selector(ns, name)},
                    "annotations": {"deployment.kubernetes.io/revision": "1", CREATOR_ANNOTATION: self.admin_id},
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": dict(sel)},
                    "template": {
                        "metadata": {"labels": dict(sel), "annotations": {}},
                        "spec": {
                            "containers": [container],
                            "dnsPolicy": "ClusterFirst",
                            "restartPolicy": "Always",
                            "schedulerName": "default-scheduler",
                            "securityContext": {},
                            "terminationGracePeriodSeconds": 30,
                        },
                    },
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    },
                    "revisionHistoryLimit": 10,
                    "progressDeadlineSeconds": 600,
                },
                "status": {
                    "observedGeneration": 1,
                    "replicas": 0,
                    "updatedReplicas": 0,
                    "readyReplicas": 0,
                    "availableReplicas": 0,
                    "conditions": [],
                },
            },
        )
        rs = self._add_replicaset(dep, created=created)
        for _ in range(replicas):
            self._add_pod(rs, stage="running", created=self._past(0.5, 1))
        self._sync(dep, initial=True)

    def _add_replicaset(self, dep: Resource, *, created: str | None = None) -> Resource:
        d = dep.obj
        h = self._name(10)
        labels = {**d["spec"]["template"]["metadata"]["labels"], "pod-template-hash": h}
        template = _snapshot(d["spec"]["template"])
        template["metadata"]["labels"] = dict(labels)
        return self._add(
            "apps.replicaset",
            dep.cluster,
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{dep.name}-{h}",
                    "namespace": dep.namespace,
                    "creationTimestamp": created or iso(self.now),
                    "generation": 1,
                    "labels": labels,
                    "annotations": {
                        "deployment.kubernetes.io/desired-replicas": str(d["spec"]["replicas"]),
                        "deployment.kubernetes.io/max-replicas": str(d["spec"]["replicas"] + 1),
                        "deployment.kubernetes.io/revision": d["metadata"]["annotations"][
                            "deployment.kubernetes.io/revision"
                        ],
                    },
                    "ownerReferences": [_owner_ref("apps/v1", "Deployment", dep)],
                },
                "spec": {
                    "replicas": d["spec"]["replicas"],
                    "selector": {"matchLabels": {**d["spec"]["selector"]["matchLabels"], "pod-template-hash": h}},
                    "template": template,
                },
                "status": {
                    "replicas": 0,
                    "fullyLabeledReplicas": 0,
                    "readyReplicas": 0,
                    "availableReplicas": 0,
                    "observedGeneration": 1,
                },
            },
        )

    def _nodes_of(self, cid: str) -> list[str]:
        return [r.name for r in self._objs.values() if r.kind == "node" and r.cluster == cid]

    def _add_pod(self, rs: Resource, *, stage: str = "pending", created: str | None = None) -> Resource:
        t = rs.obj["spec"]["template"]
        name = f"{rs.name}-{self._name(5)}"
        spec = _snapshot(t["spec"])
        spec.update(
            enableServiceLinks=True,
            preemptionPolicy="PreemptLowerPriority",
            priority=0,
            serviceAccount="default",
            serviceAccountName="default",
            tolerations=[
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                },
            ],
        )
        vol = "kube-api-access-" + self._name(5)
        for c in spec["containers"]:
            c["volumeMounts"] = [
                {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": vol, "readOnly": True}
            ]
        spec["volumes"] = [
            {
                "name": vol,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        "path": "namespace",
                                    }
                                ]
                            }
                        },
                    ],
                },
            }
        ]
        when = created or iso(self.now)
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "generateName": f"{rs.name}-",
                "namespace": rs.namespace,
                "creationTimestamp": when,
                "labels": dict(t["metadata"]["labels"]),
                "ownerReferences": [_owner_ref("apps/v1", "ReplicaSet", rs)],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        self._pod_stage(rs.cluster, obj, "pending", when)
        if stage != "pending":
            self._pod_stage(rs.cluster, obj, "creating", when)
            self._pod_stage(rs.cluster, obj, stage, when)
        return self._add("pod", rs.cluster, obj)

    def _pod_stage(self, cid: str, pod: dict[str, Any], stage: str, when: str | None = None) -> None:
        """Move a pod object to a lifecycle stage the way kubelet would report it."""
        now = when or iso(self.now)
        st = pod["status"]
        spec = pod["spec"]
        cname = spec["containers"][0]["name"]
        image = spec["containers"][0]["image"]

        def cond(t: str, s: str, **kw: Any) -> dict[str, Any]:
            return {"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": now, **kw}

        if stage == "pending":
            st.clear()
            st.update(
                phase="Pending",
                qosClass="BestEffort",
                conditions=[
                    cond(
                        "PodScheduled",
                        "False",
                        reason="Unschedulable",
                        message="0/1 nodes are available: waiting for scheduling.",
                    )
                ],
            )
            st["conditions"][0]["status"] = "False"
            return
        if stage == "creating":
            nodes = self._nodes_of(cid)
            node = self._rng.choice(nodes) if nodes else None
            spec["nodeName"] = node
            ip = (
                next((a["address"] for a in self._objs[("node", cid, None, node)].obj["status"]["addresses"]), "")
                if node
                else ""
            )
            st.clear()
            st.update(
                phase="Pending",
                qosClass="BestEffort",
                hostIP=ip,
                hostIPs=[{"ip": ip}],
                startTime=now,
                conditions=[
                    cond("PodReadyToStartContainers", "False"),
                    cond("Initialized", "True"),
                    cond(
                        "Ready",
                        "False",
                        reason="ContainersNotReady",
                        message=f"containers with unready status: [{cname}]",
                    ),
                    cond(
                        "ContainersReady",
                        "False",
                        reason="ContainersNotReady",
                        message=f"containers with unready status: [{cname}]",
                    ),
                    cond("PodScheduled", "True"),
                ],
                containerStatuses=[
                    {
                        "name": cname,
                        "image": image,
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "lastState": {},
                        "state": {"waiting": {"reason": "ContainerCreating"}},
                    }
                ],
            )
            return
        cs = st["containerStatuses"][0]
        if stage == "running":
            if "podIP" not in st:
                ip = self._pod_ip()
                st["podIP"], st["podIPs"] = ip, [{"ip": ip}]
            st["phase"] = "Running"
            for c in st["conditions"]:
                if c["type"] != "PodScheduled" and c["status"] != "True":
                    c.update(status="True", lastTransitionTime=now)
                    c.pop("reason", None)
                    c.pop("message", None)
            cs.update(
                ready=True,
                started=True,
                state={"running": {"startedAt": now}},
                containerID="containerd://" + self._hex(64),
                imageID=f"{image.split(':')[0]}@sha256:{self._hex(64)}",
            )
        elif stage in ("error", "crash"):
            st["phase"] = "Running"
            msg = f"containers with unready status: [{cname}]"
            for c in st["conditions"]:
                if c["type"] in ("Ready", "ContainersReady") and c["status"] == "True":
                    c.update(status="False", lastTransitionTime=now, reason="ContainersNotReady", message=msg)
            if stage == "error":
                started = (cs["state"].get("running") or {}).get("startedAt", now)
                cs["restartCount"] += 1
                cs.update(
                    ready=False,
                    started=False,
                    lastState={
                        "terminated": {
                            "containerID": cs.get("containerID", ""),
                            "exitCode": 1,
                            "finishedAt": now,
                            "reason": "Error",
                            "startedAt": started,
                        }
                    },
                    state={
                        "terminated": {
                            "containerID": cs.get("containerID", ""),
                            "exitCode": 1,
                            "finishedAt": now,
                            "reason": "Error",
                            "startedAt": started,
                        }
                    },
                )
            else:
                backoff = min(10 * 2 ** max(cs["restartCount"] - 1, 0), 300)
                cs.update(
                    ready=False,
                    started=False,
                    state={
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off {backoff}s restarting failed container={cname} pod={pod['metadata']['name']}_"
                            f"{pod['metadata']['namespace']}({pod['metadata'].get('uid', '')})",
                        }
                    },
                )
        else:
            raise ValueError(stage)

    # ------------------------------------------------------------------ controllers

    def _owned(self, kind: str, owner: Resource) -> list[Resource]:
        """Live objects of `kind` whose ownerReferences name `owner`, in creation order."""
        return [r for r in self._children.get(owner.obj["metadata"]["uid"], {}).values() if r.kind == kind]

    def _sync(self, dep: Resource, *, initial: bool = False) -> None:
        """Recompute replica set and deployment status from the pods, emitting MODIFIED only on real change.

        `initial` dates new conditions at the deployment's creation, for objects that predate the simulation.
        """
        if dep.key not in self._objs:
            return
        d = dep.obj
        newest = self._current_rs(dep)
        total = ready = updated = 0
        for rs in self._owned("apps.replicaset", dep):
            pods = [p for p in self._owned("pod", rs) if "deletionTimestamp" not in p.obj["metadata"]]
            r = sum(1 for p in pods if _pod_ready(p.obj))
            st = {
                "replicas": len(pods),
                "fullyLabeledReplicas": len(pods),
                "readyReplicas": r,
                "availableReplicas": r,
                "observedGeneration": rs.obj["metadata"]["generation"],
            }
            if not pods:
                st = {"replicas": 0, "observedGeneration": rs.obj["metadata"]["generation"]}
            if st != rs.obj["status"]:
                rs.obj["status"] = st
                self._modified(rs)
            total += len(pods)
            ready += r
            if rs is newest:
                updated = len(pods)
        want = d["spec"]["replicas"]
        created = d["metadata"]["creationTimestamp"]
        old = {c["type"]: c for c in d["status"].get("conditions", [])}
        now = iso(self.now)

        def cond(t: str, status: str, reason: str, message: str) -> dict[str, Any]:
            prev = old.get(t)
            ltt = prev["lastTransitionTime"] if prev and prev["status"] == status else (created if initial else now)
            lut = (
                prev["lastUpdateTime"]
                if prev and prev["status"] == status and prev["reason"] == reason
                else (created if initial else now)
            )
            return {
                "type": t,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": ltt,
                "lastUpdateTime": lut,
            }

        if ready >= want:
            avail = cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = cond(
                "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
            )
        rsname = newest.name if newest else d["metadata"]["name"]
        if updated >= want and total == want and ready >= want:
            prog = cond(
                "Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{rsname}" has successfully progressed.'
            )
        else:
            prog = cond("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rsname}" is progressing.')
        st = {
            "observedGeneration": d["metadata"]["generation"],
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [avail, prog],
        }
        if total - ready > 0:
            st["unavailableReplicas"] = total - ready
        if st != d["status"]:
            d["status"] = st
            self._modified(dep)

    def _current_rs(self, dep: Resource) -> Resource | None:
        rev = dep.obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for rs in self._owned("apps.replicaset", dep):
            if rs.obj["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == rev:
                return rs
        return None

    def _dep_of_pod(self, pod: Resource) -> Resource | None:
        for o in pod.obj["metadata"].get("ownerReferences", ()):
            rs = self._objs.get(("apps.replicaset", pod.cluster, pod.namespace, o["name"]))
            if rs:
                for o2 in rs.obj["metadata"].get("ownerReferences", ()):
                    return self._objs.get(("apps.deployment", pod.cluster, pod.namespace, o2["name"]))
        return None

    # ------------------------------------------------------------------ churn

    def step(self) -> list[Change]:
        """Apply one deterministic churn step (advancing an in-flight process or starting one); return its changes."""
        self._trim_history()
        start = len(self.history)
        self.now += self._rng.choice((1, 1, 2, 3, 5))
        for _ in range(20):
            # a handful of processes in flight at once, like a busy but not frantic cluster
            if self._tasks and (len(self._tasks) >= _MAX_TASKS or self._rng.random() < 0.65):
                task = self._tasks[self._rng.randrange(len(self._tasks))]
                try:
                    next(task)
                except StopIteration:
                    self._tasks.remove(task)
            else:
                self._start_action()
            if len(self.history) > start:
                break
        return self.history[start:]

    def _trim_history(self) -> None:
        """Let go of the oldest changes beyond `history_limit` (in chunks, so trimming costs O(1) per change)."""
        limit = self.history_limit
        if limit is None or len(self.history) <= limit + max(16, limit // 8):
            return
        cut = len(self.history) - limit
        self.trimmed_revision = self.history[cut - 1].revision
        del self.history[:cut]
        # a deleted namespace's project is kept for formatting its objects late; once neither a live object nor a
        # kept change is in that namespace, nothing can ask any more
        wanted = {
            (r.cluster, r.namespace or r.name) for r in self._objs.values() if r.namespace or r.kind == "namespace"
        }
        wanted.update((c.resource.cluster, c.resource.namespace or c.resource.name) for c in self.history)
        for key in [k for k in self._ns_project if k not in wanted]:
            del self._ns_project[key]

    def _start_action(self) -> None:
        actions: list[tuple[str, float]] = [
            ("rollout", 3),
            ("crashloop", 2),
            ("scale", 3),
            ("namespace", 1.5),
            ("project", 1),
            ("node", 1),
            ("configmap", 4),
            ("create", 2),
            ("delete", 2),
        ]
        name = self._rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
        task = getattr(self, f"_task_{name}")()
        if task is None:
            return
        self.step_kinds[name] = self.step_kinds.get(name, 0) + 1
        try:
            next(task)
        except StopIteration:
            return
        self._tasks.append(task)

    def _idle_deployments(self) -> list[Resource]:
        return [
            r
            for r in self._objs.values()
            if r.kind == "apps.deployment" and r.key not in self._busy and "deletionTimestamp" not in r.obj["metadata"]
        ]

    def _pick(self, items: list[Resource]) -> Resource | None:
        return self._rng.choice(items) if items else None

    def _task_rollout(self) -> Task | None:
        dep = self._pick(self._idle_deployments())
        return self._rollout(dep) if dep else None

    def _bring_up(self, rs: Resource, dep: Resource) -> Iterator[None]:
        pod = self._add_pod(rs)
        self._sync(dep)
        yield
        if not self._advance(pod, "creating"):
            return
        yield
        if not self._advance(pod, "running"):
            return
        self._sync(dep)

    def _advance(self, pod: Resource, stage: str) -> bool:
        """Move a pod that still exists to `stage` and announce the change; False if it is gone."""
        if pod.key not in self._objs:
            return False
        self._pod_stage(pod.cluster, pod.obj, stage)
        self._modified(pod)
        return True

    def _tear_down(self, pod: Resource, dep: Resource) -> Iterator[None]:
        md = pod.obj["metadata"]
        md["deletionTimestamp"] = iso(self.now + 30)
        md["deletionGracePeriodSeconds"] = 30
        self._modified(pod)
        self._sync(dep)
        yield
        if pod.key in self._objs:
            self._delete(pod)
            self._sync(dep)

    def _rollout(self, dep: Resource, *, image: str | None = None) -> Iterator[None]:
        self._busy.add(dep.key)
        try:
            d = dep.obj
            c = d["spec"]["template"]["spec"]["containers"][0]
            if image:
                c["image"] = image
            elif self._rng.random() < 0.5:
                repo, _, tag = c["image"].rpartition(":")
                parts = tag.split(".")
                if parts[-1].isdigit():
                    parts[-1] = str(int(parts[-1]) + 1)
                    c["image"] = f"{repo}:{'.'.join(parts)}"
            else:
                d["spec"]["template"]["metadata"].setdefault("annotations", {})["cattle.io/timestamp"] = iso(self.now)
            d["metadata"]["generation"] += 1
            ann = d["metadata"]["annotations"]
            ann["deployment.kubernetes.io/revision"] = str(int(ann["deployment.kubernetes.io/revision"]) + 1)
            self._modified(dep)
            old_rss = self._owned("apps.replicaset", dep)
            rs = self._add_replicaset(dep)
            self._sync(dep)
            yield
            want = d["spec"]["replicas"]
            for _ in range(want):
                if dep.key not in self._objs:
                    return
                yield from self._bring_up(rs, dep)
                yield
                old = [
                    p for o in old_rss for p in self._owned("pod", o) if "deletionTimestamp" not in p.obj["metadata"]
                ]
                if old:
                    yield from self._tear_down(old[0], dep)
                    yield
            for o in old_rss:
                for p in self._owned("pod", o):
                    if "deletionTimestamp" not in p.obj["metadata"]:
                        yield from self._tear_down(p, dep)
                if o.obj["spec"]["replicas"] != 0:
                    o.obj["spec"]["replicas"] = 0
                    o.obj["metadata"]["generation"] += 1
                    o.obj["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(want)
                    self._modified(o)
            # keep two old replica sets, like a short revisionHistoryLimit
            for o in sorted(
                old_rss, key=lambda r: int(r.obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            )[:-2]:
                if o.key in self._objs and not self._owned("pod", o):
                    self._delete(o)
            self._sync(dep)
        finally:
            self._busy.discard(dep.key)

    def _task_crashloop(self) -> Task | None:
        running = [
            p
            for p in self._objs.values()
            if p.kind == "pod"
            and p.obj["status"].get("phase") == "Running"
            and "deletionTimestamp" not in p.obj["metadata"]
            and _pod_ready(p.obj)
        ]
        self._rng.shuffle(running)
        for pod in running:
            dep = self._dep_of_pod(pod)
            if dep and dep.key not in self._busy:
                return self._crashloop(pod, dep)
        return None

    def _crashloop(self, pod: Resource, dep: Resource) -> Iterator[None]:
        self._busy.add(dep.key)
        try:
            good = dep.obj["spec"]["template"]["spec"]["containers"][0]["image"]
            for _ in range(self._rng.randint(2, 4)):
                if not self._advance(pod, "error"):
                    return
                self._sync(dep)
                yield
                if not self._advance(pod, "crash"):
                    return
                yield
                if not self._advance(pod, "running"):
                    return
                self._sync(dep)
                yield
        finally:
            self._busy.discard(dep.key)
        if dep.key in self._objs and dep.key not in self._busy:
            yield from self._rollout(dep, image=good)  # someone ships a fix

    def _task_scale(self) -> Task | None:
        dep = self._pick(self._idle_deployments())
        return self._scale(dep) if dep else None

    def _scale(self, dep: Resource) -> Iterator[None]:
        self._busy.add(dep.key)
        try:
            d = dep.obj
            old = d["spec"]["replicas"]
            new = max(0, min(5, old + self._rng.choice((-2, -1, 1, 1, 2))))
            if new == old:
                new = old - 1 if old >= 5 else old + 1
            d["spec"]["replicas"] = new
            d["metadata"]["generation"] += 1
            self._modified(dep)
            rs = self._current_rs(dep)
            if rs is None:
                return
            rs.obj["spec"]["replicas"] = new
            rs.obj["metadata"]["generation"] += 1
            rs.obj["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(new)
            self._modified(rs)
            self._sync(dep)
            yield
            live = [p for p in self._owned("pod", rs) if "deletionTimestamp" not in p.obj["metadata"]]
            if new > len(live):
                for _ in range(new - len(live)):
                    yield from self._bring_up(rs, dep)
                    yield
            else:
                for p in live[new:]:
                    yield from self._tear_down(p, dep)
                    yield
            self._sync(dep)
        finally:
            self._busy.discard(dep.key)

    def _task_node(self) -> Task | None:
        node = self._pick([r for r in self._objs.values() if r.kind == "node" and r.key not in self._busy])
        return self._node_flap(node) if node else None

    def _node_flap(self, node: Resource) -> Iterator[None]:
        self._busy.add(node.key)
        mid = self._node_ids[(node.cluster, node.name)]
        mnode = self._objs[("management.cattle.io.node", "local", mid.split(":")[0], mid.split(":")[1])]
        try:
            for ready in (False, True):
                when = iso(self.now)
                conds = self._node_conditions(ready, when)
                node.obj["status"]["conditions"] = conds
                taints = [
                    {"effect": e, "key": "node.kubernetes.io/unreachable", "timeAdded": when}
                    for e in ("NoSchedule", "NoExecute")
                ]
                if ready:
                    node.obj["spec"].pop("taints", None)
                else:
                    node.obj["spec"]["taints"] = taints
                self._modified(node)
                ms = mnode.obj["status"]
                ms["internalNodeStatus"]["conditions"] = _snapshot({"c": conds})["c"]
                for c in ms["conditions"]:
                    if c["type"] == "Ready":
                        c.update(status="True" if ready else "Unknown", lastUpdateTime=when)
                        if ready:
                            c.pop("message", None)
                        else:
                            c["message"] = "Kubelet stopped posting node status."
                self._modified(mnode)
                for _ in range(self._rng.randint(2, 6)):
                    yield
        finally:
            self._busy.discard(node.key)

    def _task_configmap(self) -> Task | None:
        cms = [r for r in self._objs.values() if r.kind == "configmap" and r.name != "kube-root-ca.crt"]
        cm = self._pick(cms)
        if cm is None:
            return None
        data = cm.obj.setdefault("data", {})
        key = self._rng.choice(["LOG_LEVEL", "FEATURE_FLAGS", "MAX_CONNECTIONS", "REGION"])
        data[key] = self._rng.choice(
            ["debug", "info", "warn", "search,checkout,beta", "100", "250", "eu-west-1", "us-east-2"]
        )
        self._modified(cm)
        return iter(())

    def _task_create(self) -> Task | None:
        nss = [
            r
            for r in self._objs.values()
            if r.kind == "namespace"
            and "deletionTimestamp" not in r.obj["metadata"]
            and r.name not in ("kube-system", "cattle-system")
        ]
        ns = self._pick(nss)
        if ns is None:
            return None
        if self._rng.random() < 0.5:
            self._add_configmap(ns.cluster, ns.name, "cm-" + self._name(5), {"key": self._name(8)})
        else:
            stype = self._rng.choice(
                (
                    "Opaque",
                    "kubernetes.io/tls",
                    "kubernetes.io/dockerconfigjson",
                    "kubernetes.io/basic-auth",
                    "kubernetes.io/ssh-auth",
                )
            )
            self._add_secret(ns.cluster, ns.name, "secret-" + self._name(5), stype)
        return iter(())

    def _task_delete(self) -> Task | None:
        cands = [
            r
            for r in self._objs.values()
            if r.kind in ("configmap", "secret") and r.name.startswith(("cm-", "secret-"))
        ]
        victim = self._pick(cands)
        if victim is not None:
            self._delete(victim)
            return iter(())
        # nothing churn-made to delete: drop a namespace made by churn, if any
        for cid, names in self._extra_ns.items():
            if names:
                return self._delete_namespace(cid, names[0])
        return None

    def _task_namespace(self) -> Task | None:
        cid = self._rng.choice(self.clusters())
        extra = self._extra_ns.setdefault(cid, [])
        if len(extra) >= 2:
            return self._delete_namespace(cid, extra[0])
        pid = self._rng.choice(self.projects(cid))
        name = self._rng.choice(["feature", "review", "sandbox", "tmp"]) + "-" + self._name(5)
        extra.append(name)
        self._add_namespace(cid, name, pid)
        return iter(())

    def _delete_namespace(self, cid: str, name: str) -> Iterator[None]:
        self._extra_ns[cid].remove(name)
        ns = self._objs.get(("namespace", cid, None, name))
        if ns is None:
            return
        ns.obj["metadata"]["deletionTimestamp"] = iso(self.now)
        ns.obj["status"] = {
            "phase": "Terminating",
            "conditions": [
                {
                    "type": "NamespaceDeletionContentFailure",
                    "status": "False",
                    "reason": "ContentDeleted",
                    "message": "All content successfully deleted, may be waiting on finalization",
                    "lastTransitionTime": iso(self.now),
                }
            ],
        }
        self._modified(ns)
        yield
        for r in [r for r in self._objs.values() if r.cluster == cid and r.namespace == name]:
            self._delete(r)
        yield
        if ns.key in self._objs:
            self._delete(ns)

    def _task_project(self) -> Task | None:
        cid = self._rng.choice(self.clusters())
        extra = self._extra_projects.setdefault(cid, [])
        for pid in extra:
            in_use = any(
                r.kind == "namespace" and r.cluster == cid and self.project_of(r) == pid for r in self._objs.values()
            )
            proj = self._objs.get(("management.cattle.io.project", "local", cid, pid.split(":")[1]))
            if proj is not None and not in_use:
                extra.remove(pid)
                return self._delete_project(proj)
        if len(extra) >= 2:
            return None
        pid = self._add_project(cid, self._rng.choice(["qa", "data", "ml", "frontend"]) + "-" + self._name(3))
        extra.append(pid)
        return iter(())

    def _delete_project(self, proj: Resource) -> Iterator[None]:
        proj.obj["metadata"]["deletionTimestamp"] = iso(self.now)
        self._modified(proj)
        yield
        if proj.key in self._objs:
            self._delete(proj)


def _owner_ref(api_version: str, kind: str, owner: Resource) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner.name,
        "uid": owner.obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", ()))
