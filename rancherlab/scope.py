"""Where to subscribe: one scope syntax for the Python API, the CLI and the widgets, and server URLs.

Scopes::

    global                          Norman  /v3/subscribe
    cluster:<clusterId>             Norman  /v3/clusters/<id>/subscribe
    project:<clusterId>:<projectId> Norman  /v3/projects/<c:p>/subscribe
    steve                           Steve   /v1/subscribe            (the local/management cluster)
    steve:<clusterId>               Steve   /k8s/clusters/<id>/v1/subscribe   (steve:local is /v1)

Server URLs are accepted the way people have them at hand: `https://host[:port]`, with or without
`/v3` or `/v1`, `ws(s)://`, or a whole subscribe URL copied from the browser's DevTools (the scope and
`resourceTypes` are taken from it, the UI's `sockId` is dropped). Any other query parameter of a subscribe URL gets
a `URLParameterWarning` that says what Rancher does with it and how to ask for what it seems to want; a
credential-like parameter's value is never shown, in a warning or an error. No I/O.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from .errors import DashboardURLError, ScopeError
from .protocol.event import Dialect

ScopeKind = Literal["global", "cluster", "project", "steve"]

SCOPE_HELP: Final = (
    "use one of: global, cluster:<clusterId>, project:<clusterId>:<projectId> (Norman /v3), "
    "steve, steve:<clusterId> (Steve /v1)"
)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_BAD_ID_CHARS: Final = frozenset("/?#% \t\r\n")

# Query parameter names (lower case) that carry a credential in other APIs. Rancher reads none of them: its token
# comes only from `Authorization` or the `R_SESS` cookie (rancher/rancher pkg/auth/tokens GetTokenAuthFromRequest).
CREDENTIAL_PARAMS: Final = frozenset(
    {
        "token",
        "access_token",
        "accesstoken",
        "id_token",
        "auth",
        "authorization",
        "bearer",
        "password",
        "passwd",
        "secret",
        "secret_key",
        "secretkey",
        "r_sess",
        "api_key",
        "apikey",
        "key",
        "jwt",
        "session",
        "sessionid",
    }
)
_HIDDEN: Final = "***"


class URLParameterWarning(UserWarning):
    """A pasted subscribe URL has a query parameter Rancher does not read, or reads under another spelling."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A subscribe endpoint, independent of the server it lives on."""

    kind: ScopeKind
    cluster: str | None = None
    project: str | None = None  # the `p-yyyyy` part; `project_id` is the full `c-xxxxx:p-yyyyy`

    def __post_init__(self) -> None:
        if self.kind not in ("global", "cluster", "project", "steve"):
            raise ScopeError(f"unknown scope kind {self.kind!r}: {SCOPE_HELP}")
        if self.kind == "steve" and self.cluster == "local":
            object.__setattr__(self, "cluster", None)  # Rancher serves /k8s/clusters/local/v1 as /v1
        if self.kind in ("cluster", "project"):
            _check_id(self.cluster, "cluster id", self)
        if self.kind == "project":
            _check_id(self.project, "project id", self)
        elif self.project is not None:
            raise ScopeError(f"only a project scope has a project id (got {self.project!r} for {self.kind})")
        if self.kind == "global" and self.cluster is not None:
            raise ScopeError(f"the global scope has no cluster (got {self.cluster!r}); use cluster:{self.cluster}")
        if self.kind == "steve" and self.cluster is not None:
            _check_id(self.cluster, "cluster id", self)

    @classmethod
    def parse(cls, text: str | Scope) -> Scope:
        """`global`, `cluster:c-abc`, `project:c-abc:p-xyz`, `steve`, `steve:c-abc`."""
        if isinstance(text, Scope):
            return text
        if not isinstance(text, str) or not text.strip():
            raise ScopeError(f"empty scope: {SCOPE_HELP}")
        kind, _, rest = text.strip().partition(":")
        kind = kind.lower()
        if kind == "global" and not rest:
            return cls("global")
        if kind == "steve":
            return cls("steve", rest or None)
        if kind == "cluster" and rest:
            if ":" in rest:
                raise ScopeError(f"{text!r} looks like a project id; use project:{rest} for a project scope")
            return cls("cluster", rest)
        if kind == "project":
            cluster, sep, project = rest.partition(":")
            if not sep or not cluster or not project:
                raise ScopeError(
                    f"project scope {text!r} needs the cluster too: project:<clusterId>:<projectId>, e.g. "
                    "project:c-abc12:p-xyz34 (Rancher's project ids are 'c-xxxxx:p-yyyyy'; "
                    "list them with RestClient.projects(cluster))"
                )
            return cls("project", cluster, project)
        raise ScopeError(f"unknown scope {text!r}: {SCOPE_HELP}")

    @property
    def dialect(self) -> Dialect:
        return "steve" if self.kind == "steve" else "norman"

    @property
    def project_id(self) -> str | None:
        return f"{self.cluster}:{self.project}" if self.kind == "project" else None

    @property
    def api_path(self) -> str:
        """Where this scope's REST collections live (the base of `<api_path>/<plural>`)."""
        if self.kind == "global":
            return "/v3"
        if self.kind == "cluster":
            return f"/v3/cluster/{self.cluster}"
        if self.kind == "project":
            return f"/v3/project/{self.project_id}"
        return f"/k8s/clusters/{self.cluster}/v1" if self.cluster else "/v1"

    @property
    def subscribe_path(self) -> str:
        """The subscribe endpoint, spelled as Rancher's own UIs spell it."""
        if self.kind == "global":
            return "/v3/subscribe"
        if self.kind == "cluster":
            return f"/v3/clusters/{self.cluster}/subscribe"
        if self.kind == "project":
            return f"/v3/projects/{self.project_id}/subscribe"
        return f"{self.api_path}/subscribe"

    def __str__(self) -> str:
        if self.kind == "global":
            return "global"
        if self.kind == "cluster":
            return f"cluster:{self.cluster}"
        if self.kind == "project":
            return f"project:{self.project_id}"
        return f"steve:{self.cluster}" if self.cluster else "steve"


def _check_id(value: str | None, what: str, scope: Scope) -> None:
    if not value:
        raise ScopeError(f"{scope.kind} scope needs a {what}: {SCOPE_HELP}")
    if _BAD_ID_CHARS & set(value) or (what == "cluster id" and ":" in value):
        raise ScopeError(f"{what} {value!r} is not a Rancher id (ids look like 'c-abc12', 'local', 'p-xyz34')")


@dataclass(frozen=True, slots=True)
class ServerURL:
    """A parsed server address: `base` is `http(s)://host[:port][/prefix]`; the rest was found in the URL."""

    base: str
    scope: Scope | None = None
    types: tuple[str, ...] = ()
    # `https://access:secret@host` credentials, taken out of the URL so they are never shown with it.
    userinfo: tuple[str, str] | None = field(default=None, repr=False)
    # What the URL's query asked for that Rancher will not do (each also issued as a URLParameterWarning).
    notes: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def secure(self) -> bool:
        return self.base.startswith("https://")

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or ""

    @property
    def is_loopback(self) -> bool:
        """Loopback servers never go through an environment proxy."""
        host = self.host.lower()
        return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def parse_server_url(url: str) -> ServerURL:
    """Accept every way a user may hold a Rancher address; reject a dashboard URL with a clear message."""
    if not isinstance(url, str) or not url.strip():
        raise ScopeError("empty server URL: pass the Rancher server address, e.g. https://rancher.example.com")
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ScopeError(f"unsupported URL scheme {parts.scheme!r}: use https:// (or http://, wss://, ws://)")
    if not parts.hostname:
        raise ScopeError(f"no host in server URL {_shown(parts)!r}: use e.g. https://rancher.example.com")
    try:
        port = parts.port
    except ValueError:
        raise ScopeError(f"bad port in server URL {_shown(parts)!r}") from None
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    userinfo = (parts.username or "", parts.password or "") if parts.username else None

    segments = [s for s in parts.path.split("/") if s]
    if "dashboard" in segments:
        before = "/".join(segments[: segments.index("dashboard")])
        server = f"{scheme}://{netloc}" + (f"/{before}" if before else "")
        raise DashboardURLError(
            f"{_shown(parts)!r} is a page of the Rancher dashboard (a browser app), not the API: pass the server "
            f"URL instead, e.g. {server}"
        )
    prefix, scope = _scope_from_path(segments, _shown(parts))
    base = f"{scheme}://{netloc}" + (f"/{'/'.join(prefix)}" if prefix else "")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    types: tuple[str, ...] = ()
    if scope is not None and scope.dialect == "norman":
        types = tuple(v for k, v in pairs if k == "resourceTypes")
    notes = url_parameter_notes(pairs, scope)
    for note in notes:
        warnings.warn(note, URLParameterWarning, stacklevel=2)
    return ServerURL(base, scope, types, userinfo, notes)


def url_parameter_notes(pairs: Iterable[tuple[str, str]], scope: Scope | None) -> tuple[str, ...]:
    """One note per query parameter Rancher will not read as given: what Rancher does instead, and the right way.

    `pairs` are the decoded (name, value) pairs of the URL's query. `sockId` (the dashboard's socket counter, which
    no server code reads) and Norman's `resourceTypes` get none. Credential-like parameters are named, never shown.
    Sources: rancher/norman `pkg/subscribe/handler.go` (only `resourceTypes` is read; `store/proxy/share_watch.go`
    drops list options), rancher/apiserver `pkg/subscribe` (Steve takes watches as messages; the object formatter
    reads `exclude`/`include`/`excludeValues`), rancher/rancher `pkg/auth/tokens` (no credential from the URL).
    """
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    notes: list[str] = []
    for name, values in grouped.items():
        note = _credential_note(name, scope) or (_subscribe_note(name, values, scope) if scope is not None else None)
        if note:
            notes.append(note)
    return tuple(notes)


def _credential_note(name: str, scope: Scope | None) -> str | None:
    if name.lower() not in CREDENTIAL_PARAMS:
        return None
    what = "the subscribe socket" if scope is not None else "the server"
    return (
        f"the URL's {name}= parameter looks like a credential; Rancher reads no credential from the URL (only the "
        f"Authorization header or the R_SESS cookie), so {what} would not be authenticated by it. rancherlab dropped "
        "it and never sends or shows it: pass the token with credentials= (Python), --token-file, RANCHER_TOKEN_KEY "
        "or ~/.rancher/cli2.json"
    )


_NORMAN_TYPE_SPELLINGS: Final = frozenset(
    {"resourcetype", "resourcetypes", "resource_type", "resource_types", "types", "type", "resourcetypes[]"}
)
_NORMAN_UNUSED: Final = frozenset({"eventnames", "limit", "marker", "sort", "order", "_export", "apiversions"})
_STEVE_TYPE_SPELLINGS: Final = _NORMAN_TYPE_SPELLINGS
_STEVE_WATCH_FIELDS: Final = {
    "namespace": "namespace",
    "selector": "selector",
    "id": "id",
    "mode": "mode",
    "debouncems": "debounceMs",
}
_STEVE_FORMATTER: Final = frozenset({"exclude", "include", "excludevalues"})


def _shown_values(values: list[str]) -> str:
    text = ", ".join(repr(v[:40]) for v in values[:3])
    return text + (", …" if len(values) > 3 else "")


def _subscribe_note(name: str, values: list[str], scope: Scope) -> str | None:
    low = name.lower()
    if low == "sockid" or (scope.dialect == "norman" and name == "resourceTypes"):
        return None
    spelled = "&".join(f"resourceTypes={quote(v, safe='')}" for v in values[:3] if v) or "resourceTypes=<schema id>"
    if scope.dialect == "norman":
        if low in _NORMAN_TYPE_SPELLINGS:
            return (
                f"Norman reads resourceTypes= (case-sensitive, repeated once per type), not {name}= "
                f"({_shown_values(values)}): Rancher would stream every type of the scope. Write {spelled}, or pass "
                "types=(...) / --type"
            )
        if low in ("namespace", "namespaceid"):
            return (
                f"Norman's subscribe has no namespace filter: {name}= is ignored and every namespace of the scope "
                "streams. Subscribe to the project (/v3/projects/<clusterId>:<projectId>/subscribe, scope "
                "project:<c>:<p>) or filter the events afterwards (rl.frame(...) on namespaceId)"
            )
        if low in ("resourceversion", "revision"):
            return (
                f"Norman cannot resume: {name}= is ignored and the socket starts with the changes from now on. "
                "rancherlab lists the objects over REST first (snapshot=True, the default) to start from a full state"
            )
        if low == "projectid":
            return (
                "Norman ignores projectId= (declared in its Subscribe schema, never read): a project is chosen by the "
                "URL path, /v3/projects/<clusterId>:<projectId>/subscribe (scope project:<c>:<p>)"
            )
        if low in _NORMAN_UNUSED or low.endswith(("_ne", "_gt", "_lt", "_gte", "_lte", "_like", "_null", "_notnull")):
            return (
                f"Norman's subscribe ignores {name}= (list options do not reach its shared watch): every object "
                "change of the chosen types streams. Filter the events afterwards"
            )
        return f"Norman's subscribe reads only resourceTypes=; {name}= is ignored and was dropped"
    if low in _STEVE_TYPE_SPELLINGS:
        names = ", ".join(repr(v) for v in values[:3] if v) or "'pod'"
        return (
            f"Steve takes watches as messages, not URL parameters: {name}= is ignored by Rancher and nothing is "
            f"watched from it. Ask for the types with types=({names},) or watches=(Watch(...),) in Python, --type on "
            'the command line (rancherlab sends {"resourceType": ...} for each)'
        )
    if low in ("resourceversion", "revision"):
        return (
            f"Steve reads resourceVersion from each watch message, not from the URL: {name}= is ignored by Rancher. "
            "rancherlab sends it in every watch message itself: the revision of its REST list (snapshot=True, the "
            "default), then the last one seen after a reconnect"
        )
    if low in _STEVE_WATCH_FIELDS:
        field_name = _STEVE_WATCH_FIELDS[low]
        return (
            f"Steve reads {field_name} from each watch message, not from the URL: {name}= is ignored by Rancher. Put it "
            f'in the watch: Watch("pod", {_watch_arg(field_name)}=...), which sends {{"resourceType": "pod", '
            f'"{field_name}": ...}}'
        )
    if low in _STEVE_FORMATTER:
        return (
            f"Rancher would apply {name}= to every object it pushes, but rancherlab subscribes without URL parameters: "
            "objects arrive whole. Drop the unwanted fields afterwards (rl.frame(...) / rl.flatten)"
        )
    return f"Steve's subscribe reads no URL parameters (watches come as messages); {name}= is ignored and was dropped"


def _watch_arg(field_name: str) -> str:
    return {"debounceMs": "debounce_ms"}.get(field_name, field_name)


def _scope_from_path(segments: list[str], shown: str) -> tuple[list[str], Scope | None]:
    """Split a URL path into the server's path prefix and the scope of a subscribe URL (if it is one)."""
    for i, seg in enumerate(segments):
        rest = segments[i + 1 :]
        if seg == "v3":
            if rest == ["subscribe"]:
                return segments[:i], Scope("global")
            if len(rest) == 3 and rest[0] in ("clusters", "cluster") and rest[2] == "subscribe":
                return segments[:i], Scope("cluster", rest[1])
            if len(rest) == 3 and rest[0] in ("projects", "project") and rest[2] == "subscribe":
                return segments[:i], Scope.parse(f"project:{rest[1]}")
            return segments[:i], None
        if seg == "v1":
            return segments[:i], (Scope("steve") if rest == ["subscribe"] else None)
        if seg == "k8s" and len(rest) >= 2 and rest[0] == "clusters":
            tail = rest[2:]
            return segments[:i], (Scope("steve", rest[1]) if tail == ["v1", "subscribe"] else None)
        if seg == "meta":
            raise ScopeError(
                f"{shown!r} is Norman's /meta endpoint, which has no watchable types; use /v3/subscribe or /v1/subscribe"
            )
    return segments, None


def _shown(parts: SplitResult) -> str:
    """A URL for messages: any `user:password@` removed, the value of a credential-like parameter hidden."""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    kept = []
    for item in parts.query.split("&") if parts.query else ():
        name, sep, _ = item.partition("=")
        hidden = unquote(name).lower() in CREDENTIAL_PARAMS
        kept.append(f"{name}{sep}{_HIDDEN}" if hidden and sep else item)
    query = f"?{'&'.join(kept)}" if kept else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}{query}"


def subscribe_url(base: str, scope: Scope, types: Iterable[str] = ()) -> str:
    """The `ws(s)://` URL of a scope's subscribe endpoint; Norman types become repeated `resourceTypes=`."""
    ws = "wss" + base[len("https") :] if base.startswith("https://") else "ws" + base[len("http") :]
    path = quote(scope.subscribe_path, safe="/:")
    names = list(types)
    if names and scope.dialect == "steve":
        raise ScopeError("Steve scopes take watches, not resourceTypes=; pass watches=(Watch('pod'), ...)")
    query = urlencode([("resourceTypes", t) for t in names]) if names else ""
    return ws + path + (f"?{query}" if query else "")


def resolve_scope(server: ServerURL, scope: str | Scope | None) -> Scope:
    """The scope to use: the one given, else the one the pasted subscribe URL names; both must agree."""
    given = Scope.parse(scope) if scope is not None else None
    if given is not None and server.scope is not None and given != server.scope:
        raise ScopeError(f"the URL subscribes to {server.scope} but the scope given is {given}; drop one of them")
    chosen = given or server.scope
    if chosen is None:
        raise ScopeError(f"no scope given and the URL is not a subscribe URL: {SCOPE_HELP}")
    return chosen


__all__ = [
    "CREDENTIAL_PARAMS",
    "SCOPE_HELP",
    "Scope",
    "ScopeKind",
    "ServerURL",
    "URLParameterWarning",
    "parse_server_url",
    "resolve_scope",
    "subscribe_url",
    "url_parameter_notes",
]
