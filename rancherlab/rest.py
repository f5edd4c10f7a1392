"""The REST side of Rancher that a subscriber needs: lists for snapshots and resyncs, schemas for helpful
errors, clusters and projects for pickers, the server version for recording headers.

It authenticates and verifies TLS exactly as the stream does (one `Server`, one SSL context), and turns
HTTP failures into the typed errors of `errors.py`. Environment proxies are used for remote servers and
never for loopback ones.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Self
from urllib.parse import quote, urlsplit

import httpx

from ._version import __version__
from .credentials import Server
from .errors import (
    TOKEN_HELP,
    AuthenticationError,
    ClusterNotFound,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    ServerUnavailableError,
    TLSError,
    type_list,
)
from .protocol._json import loads
from .protocol.objects import object_revision
from .protocol.steve import Watch, guess_plural
from .scope import Scope

log = logging.getLogger("rancherlab.rest")

USER_AGENT: Final = f"rancherlab/{__version__}"
_MAX_PAGES: Final = 10_000
# Norman schemas that are never collections of watched objects.
_NOT_WATCHED: Final = frozenset({"subscribe", "schema", "apiRoot", "error", "collection", "resource"})


@dataclass(frozen=True, slots=True)
class Listing:
    """Objects of one list call and, for Steve, the collection's revision to watch from."""

    items: list[dict[str, Any]]
    revision: str | None = None


def tls_error(host: str, exc: BaseException) -> TLSError:
    """A TLS failure that says what to do: pass the CA, or (last resort) turn verification off."""
    detail = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSError(
            f"could not verify the TLS certificate of {host} ({detail}). If Rancher uses a self-signed or private CA, "
            "pass that CA's PEM with --cacert FILE (cacert= in Python, RANCHER_CA_CERTS in the environment); "
            "--insecure turns verification off, as a last resort"
        )
    return TLSError(
        f"TLS handshake with {host} failed ({detail}). Check that the URL's scheme matches the port "
        "(https:// for a TLS port, http:// for a plain one) and that the server speaks TLS"
    )


def find_ssl_error(exc: BaseException | None) -> ssl.SSLError | None:
    """The SSL error behind a transport exception, if that is what it is."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def status_error(status: int, body: str, *, what: str, scope: Scope | None = None) -> RancherlabError:
    """A typed error for an HTTP status Rancher answered; the body is Rancher's (never our request)."""
    message = _body_message(body)
    if status == 401:
        return AuthenticationError(
            f"{what}: HTTP 401, the server did not accept the credential ({message or 'empty body'}). It may be wrong, "
            f"expired, disabled, or scoped to one cluster (/v3 needs an unscoped key). {TOKEN_HELP}"
        )
    if status == 403:
        if "origin" in message.lower():
            return PermissionDeniedError(
                f"{what}: HTTP 403 '{message}': Rancher refuses upgrades whose Origin header names another host. "
                "rancherlab sends no Origin; a proxy in between or copied browser headers must be adding one"
            )
        return PermissionDeniedError(f"{what}: HTTP 403, the credential may not do this ({message or 'forbidden'})")
    if status == 404:
        return NotFoundError(f"{what}: HTTP 404 ({message or 'not found'})")
    if status >= 500:
        return ServerUnavailableError(f"{what}: HTTP {status} ({message or 'server error'})")
    return RancherlabError(f"{what}: HTTP {status} ({message or 'unexpected answer'})")


def _body_message(body: str) -> str:
    text = body.strip()
    try:
        doc = loads(text) if text else None
    except ValueError:
        return text[:200]
    if isinstance(doc, dict):
        for key in ("message", "Message"):
            if isinstance(doc.get(key), str):
                return str(doc[key])[:200]
    return text[:200]


class RestClient:
    """An async Rancher REST client for one server (`async with RestClient(server) as rest:`)."""

    def __init__(
        self,
        server: Server,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server
        verify: ssl.SSLContext | bool = True
        if server.url.secure:
            verify = ssl_context or server.ssl_context() or True
        self._client = httpx.AsyncClient(
            base_url=server.base,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **server.headers()},
            verify=verify,
            trust_env=not server.url.is_loopback,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )
        self._schemas: dict[str, list[dict[str, Any]]] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- plumbing -----------------------------------------------------------------------------------

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, what: str | None = None, scope: Scope | None = None
    ) -> Any:
        """GET a path (or an absolute URL on the same server) as JSON; failures become typed errors."""
        label = what or f"GET {path}"
        try:
            try:
                resp = await self._client.get(path, params=params)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # a kept-alive connection the server had closed meanwhile; a GET is safe to send again
                resp = await self._client.get(path, params=params)
        except httpx.TransportError as exc:
            ssl_exc = find_ssl_error(exc)
            if ssl_exc is not None:
                raise tls_error(self.server.url.host, ssl_exc) from None
            raise ServerUnavailableError(
                f"{label}: cannot reach {self.server.base} ({type(exc).__name__}: {exc})"
            ) from None
        if resp.status_code != 200:
            raise status_error(resp.status_code, resp.text, what=label, scope=scope)
        try:
            return loads(resp.content)
        except ValueError:  # not JSON, or nested deeper than any parser goes
            raise RancherlabError(
                f"{label}: the answer is not JSON (is {self.server.base} a Rancher server?)"
            ) from None

    async def _collection(
        self, path: str, params: Mapping[str, str] | None = None, *, what: str | None = None, scope: Scope | None = None
    ) -> Listing:
        """Every page of a Norman or Steve collection, following `pagination.next`."""
        items: list[dict[str, Any]] = []
        revision: str | None = None
        doc = await self.get(path, params, what=what, scope=scope)
        for _ in range(_MAX_PAGES):
            if not isinstance(doc, dict) or not isinstance(doc.get("data", []), list):
                raise RancherlabError(f"{what or path}: not a collection (no 'data' list)")
            # an empty Steve collection has no "data" key at all
            items.extend(x for x in doc.get("data", []) if isinstance(x, dict))
            if doc.get("revision") not in (None, ""):
                revision = str(doc["revision"])
            nxt = (doc.get("pagination") or {}).get("next") if isinstance(doc.get("pagination"), dict) else None
            if not nxt:
                break
            doc = await self.get(self._same_server(nxt), what=what, scope=scope)
        return Listing(items, revision)

    def _same_server(self, url: str) -> str:
        """A `next` link as a path: links carry the server's idea of its host, which may differ behind proxies."""
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    # --- Norman (/v3) -------------------------------------------------------------------------------

    async def clusters(self) -> list[dict[str, Any]]:
        return (await self._collection("/v3/clusters", what="listing clusters")).items

    async def cluster(self, cluster_id: str) -> dict[str, Any]:
        """One cluster; `ClusterNotFound` (listing the known ids) when the server has none by that id."""
        try:
            doc = await self.get(f"/v3/clusters/{quote(cluster_id, safe='')}", what=f"looking up cluster {cluster_id}")
        except NotFoundError:
            known = [c.get("id", "?") for c in await self.clusters()]
            raise ClusterNotFound(
                f"this server has no cluster {cluster_id!r}; its clusters are: {type_list(known)} "
                "(ids look like 'c-abc12', or 'local' for the cluster Rancher runs in)",
                cluster=cluster_id,
            ) from None
        return doc if isinstance(doc, dict) else {}

    async def projects(self, cluster_id: str | None = None) -> list[dict[str, Any]]:
        params = {"clusterId": cluster_id} if cluster_id else None
        return (await self._collection("/v3/projects", params, what="listing projects")).items

    async def server_version(self) -> str | None:
        """Rancher's version (`server-version` setting), or None when the server does not say."""
        for path in ("/v3/settings/server-version", "/v1/management.cattle.io.settings/server-version"):
            try:
                doc = await self.get(path)
            except NotFoundError:
                continue
            if isinstance(doc, dict) and doc.get("value"):
                return str(doc["value"])
        return None

    # --- both dialects -------------------------------------------------------------------------------

    async def schemas(self, scope: Scope) -> list[dict[str, Any]]:
        """The schemas a scope offers (cached): Norman's version schemas, or Steve's `/v1/schemas`."""
        key = str(scope)
        if key not in self._schemas:
            what = f"listing the types of {scope}"
            if scope.kind in ("cluster", "project"):
                # the version's schemas (/v3/cluster/schemas); some servers also serve them under the sub-context
                try:
                    listing = await self._collection(f"/v3/{scope.kind}/schemas", what=what, scope=scope)
                except NotFoundError:
                    listing = await self._collection(f"{scope.api_path}/schemas", what=what, scope=scope)
            else:
                listing = await self._collection(f"{scope.api_path}/schemas", what=what, scope=scope)
            self._schemas[key] = listing.items
        return self._schemas[key]

    async def types(self, scope: Scope) -> list[str]:
        """Names of the listable types of a scope (Norman schema ids; Steve schema ids)."""
        out = []
        for schema in await self.schemas(scope):
            sid = schema.get("id")
            if not isinstance(sid, str) or sid in _NOT_WATCHED:
                continue
            methods = schema.get("collectionMethods")
            if isinstance(methods, list) and "GET" not in methods:
                continue
            out.append(sid)
        return sorted(out)

    async def collection_path(self, scope: Scope, type_name: str) -> str:
        """Where a Norman type's collection lives in a scope: the schema's plural, else Norman's rule."""
        plural = None
        try:
            for schema in await self.schemas(scope):
                if schema.get("id") == type_name:
                    plural = schema.get("pluralName")
                    break
        except NotFoundError:
            pass
        return f"{scope.api_path}/{plural or guess_plural(type_name)}"

    async def list_objects(self, scope: Scope, type_name: str) -> Listing:
        """Every object of a Norman type in a scope (the REST side of a `resourceTypes=` subscription)."""
        if scope.dialect == "steve":
            return await self.list_watch(scope, Watch(type_name))
        path = await self.collection_path(scope, type_name)
        return await self._collection(path, what=f"listing {type_name} in {scope}", scope=scope)

    async def list_watch(self, scope: Scope, watch: Watch) -> Listing:
        """What a Steve watch covers, with the revision to watch from (the dashboard's list-then-watch)."""
        what = f"listing {watch.type} in {scope}"
        base = f"{scope.api_path}/{quote(watch.type, safe='')}"
        params = {"labelSelector": watch.selector} if watch.selector else None
        if watch.id:
            ns, sep, name = watch.id.partition("/")
            path = (
                f"{base}/{quote(ns, safe='')}/{quote(name, safe='')}"
                if sep
                else (
                    f"{base}/{quote(watch.namespace, safe='')}/{quote(watch.id, safe='')}"
                    if watch.namespace
                    else f"{base}/{quote(watch.id, safe='')}"
                )
            )
            try:
                obj = await self.get(path, what=what, scope=scope)
            except NotFoundError:
                return Listing([], None)
            return Listing([obj] if isinstance(obj, dict) else [], object_revision(obj))
        path = f"{base}/{quote(watch.namespace, safe='')}" if watch.namespace else base
        return await self._collection(path, params, what=what, scope=scope)


__all__ = ["USER_AGENT", "Listing", "RestClient", "find_ssl_error", "status_error", "tls_error"]
