"""The Explorer: ipywidgets controls to pick a server, a credential and a scope, and a live panel that
shows what arrives, down to the frame.

Secrets: a typed token, secret key or cookie is read from its Password field when you press Enter (or
leave the field) and the field is cleared at once, so the secret never stays in widget state (which the
browser keeps and a notebook saves); it lives only in this kernel's memory and is shown masked.

Threads: button callbacks run on the kernel's thread; events are counted on rancherlab's loop thread by a
constant-time sink (`Tally.add`); the panel is redrawn by a timer on that loop at most 1/`refresh` times
a second, by setting traits, so receiving never waits on the browser.
"""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import ipywidgets as w
from traitlets import Unicode

from .._loop import shared
from ..capture import Capture, capture, event_loop
from ..credentials import ENV_CONFIG_DIR, Credentials, Server, resolve_server
from ..errors import (
    AuthenticationError,
    CredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    ServerUnavailableError,
    TLSError,
    UsageError,
)
from ..protocol.steve import Watch
from ..rest import RestClient
from ..scope import Scope, ServerURL, parse_server_url
from . import _render as R
from ._source import EventSource, LiveSource
from ._tally import ObjectKey, Tally

T = TypeVar("T")
_NORMAN_KINDS: Final = ("global", "cluster", "project")
MIN_REFRESH: Final = 0.1  # seconds: the panel is redrawn at most 10 times a second
LIST_ROWS: Final = 60  # of the last events, how many the list offers
SOURCES: Final = (
    ("environment (RANCHER_URL, RANCHER_TOKEN_KEY)", "env"),
    ("Rancher CLI config (cli2.json)", "cli"),
    ("bearer token", "token"),
    ("API key pair", "apikey"),
    ("browser R_SESS cookie", "cookie"),
)
_TYPED: Final = ("token", "apikey", "cookie")
_HINTS: Final[list[tuple[type[BaseException], str]]] = [
    (
        AuthenticationError,
        (
            "What to do: paste a valid API token (Rancher UI, avatar menu, Account & API Keys; an unscoped key) into "
            "the token field, press Enter, then Connect again."
        ),
    ),
    (
        PermissionDeniedError,
        (
            "What to do: this credential may not watch that; unselect the type (or pick another scope), or ask an "
            "admin for the permission."
        ),
    ),
    (
        TLSError,
        "What to do: put the path of the CA's PEM file in 'CA file' (or, last resort, tick 'insecure').",
    ),
    (
        ServerUnavailableError,
        "What to do: check the server URL and that the server is up and reachable from this kernel.",
    ),
    (NotFoundError, "What to do: pick one of the names the controls list, then try again."),
]


class SecretField(w.Password):
    """A Password field whose typed value is never echoed back: ipywidgets 8 echoes every value the browser sends
    to all browsers (`echo_update`) before the kernel's callback runs; for a secret that would be one more copy."""

    value = Unicode(help="The typed secret: read and cleared by the Explorer at once").tag(sync=True, echo_update=False)


def _guarded(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A widget callback whose every error appears in the widget (not only in JupyterLab's log console)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(self: Explorer, *args: Any) -> Any:
            try:
                return fn(self, *args)
            except Exception as exc:  # noqa: BLE001 - shown in plain words; nothing captured is lost
                self.show_error(exc, what)
                return None

        return call

    return wrap


class Explorer:
    """`rl.Explorer()` in a notebook cell shows the controls; `.capture` is the running capture.

    With nothing configured it opens on its controls: type a server URL (a subscribe URL copied from the
    browser sets API, scope and types too), pick where the credential comes from, Connect, pick a scope and
    types, Start. "try it without a Rancher" starts the embedded simulator and fills URL and credential.
    With `url` and `credentials` given (or a server in the environment / Rancher CLI config) it connects at
    once. Errors of Connect, Start and every other control never raise: they appear in `message` (or, for a
    capture that ended, in the live status) in plain words with what to do; the methods behind the buttons
    (`connect()`, `start()`, `stop()`, `try_simulator()`, `refresh_schema()`) report the same way. Only a
    malformed `credentials` argument raises (`CredentialsError`), before anything is shown.

    `record` is the default recording path for the Record toggle; `refresh` the panel's redraw interval in
    seconds (at least 0.1); `rows` the last events kept for the list; `simulator` options for
    `rl.Simulator` (e.g. `{"rate": 20}`); other keywords tune the stream (see `StreamOptions`).
    """

    def __init__(
        self,
        url: str | None = None,
        credentials: Credentials | str | None = None,
        *,
        cacert: str | None = None,
        insecure: bool | None = None,
        record: str | os.PathLike[str] | None = None,
        refresh: float = 0.25,
        rows: int = 200,
        env: Mapping[str, str] | None = None,
        cli_config: Any = None,
        simulator: Mapping[str, Any] | None = None,
        **tuning: Any,
    ) -> None:
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._cli_config = cli_config
        self._tuning = tuning
        self._simulator_options = dict(simulator or {})
        self.refresh = max(MIN_REFRESH, refresh)
        self.server: Server | None = None
        self.capture: Capture | None = None
        self.source: EventSource | None = None
        self.tally = Tally(rows=rows)
        self.simulator: Any = None
        self.renders = 0  # panel redraws that changed something (the benchmark reads this)
        self._credentials: Credentials | None = None
        self._rest: RestClient | None = None
        self._quiet = False  # controls being set by code, not by the user
        self._drawn = -1
        self._selected: int | None = None
        self._listing = False
        self._pasted: ServerURL | None = None
        self._build(record)
        if credentials is not None:
            cred = Credentials.bearer(credentials) if isinstance(credentials, str) else credentials
            self._set_credentials(cred, "argument")
            self.cred_source.value = {"bearer": "token", "basic": "apikey", "cookie": "cookie"}[cred.scheme]
        elif self._env.get("RANCHER_URL"):
            self.cred_source.value = "env"
        if cacert:
            self.cacert.value = str(cacert)
        if insecure:
            self.insecure.value = True
        if url:
            self.url.value = url
        if url or self.cred_source.value == "env":
            self.connect()

    # --- building --------------------------------------------------------------------------------------
    def _build(self, record: str | os.PathLike[str] | None) -> None:
        def text(**kw: Any) -> w.Text:  # each field its own Layout: hiding one must not hide the others
            return w.Text(continuous_update=False, layout=w.Layout(width="32em"), **kw)

        def secret(**kw: Any) -> SecretField:
            return SecretField(continuous_update=False, layout=w.Layout(width="32em"), **kw)

        self.url = text(description="server URL", placeholder="https://rancher.example.com or a copied subscribe URL")
        self.cred_source = w.Dropdown(options=SOURCES, value="token", description="credential")
        self.token = secret(description="token", placeholder="token-xxxxx:secret, then Enter")
        self.access_key = text(description="access key", placeholder="token-xxxxx")
        self.secret_key = secret(description="secret key", placeholder="the secret key, then Enter")
        self.cookie = secret(description="R_SESS", placeholder="the browser's R_SESS cookie value, then Enter")
        self.credential = w.HTML("credential: <i>none yet</i>")
        self.cacert = text(description="CA file", placeholder="PEM file of the CA that signed Rancher's certificate")
        self.insecure = w.Checkbox(value=False, description="insecure: do not verify TLS (token readable on the path)")
        self.simulate_button = w.Button(description="try it without a Rancher", icon="flask")
        self.connect_button = w.Button(description="Connect", button_style="primary", icon="plug")
        self.message = w.HTML()
        self.message.add_class("rl-message")

        self.api = w.ToggleButtons(options=[("Norman /v3", "norman"), ("Steve /v1", "steve")], value="norman")
        self.kind = w.Dropdown(options=list(_NORMAN_KINDS), value="project", description="scope")
        self.cluster = w.Dropdown(options=[], description="cluster")
        self.project = w.Dropdown(options=[], description="project")
        self.types = w.SelectMultiple(options=[], rows=8, description="types")
        self.namespace = w.Dropdown(options=[("(all)", "")], value="", description="namespace")
        self.endpoint = w.HTML()
        self.record_toggle = w.Checkbox(value=False, description="record")
        default = record or _recording_name()
        self.record_path = w.Text(value=str(default), description="to", layout=w.Layout(width="32em"))
        self._auto_record = "" if record else str(default)
        self.record_status = w.HTML()
        self.start_button = w.Button(description="Start", button_style="success", icon="play", disabled=True)
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)

        self.status = w.HTML("not connected")
        self.status.add_class("rl-status")
        self.timeline = w.HTML()
        self.rate = w.HTML()
        self.rate.add_class("rl-rate")
        self.counts = w.HTML()
        self.counts.add_class("rl-counts")
        self.events = w.Select(options=[], rows=14, layout=w.Layout(width="44em"))
        self.events.add_class("rl-events")
        self.event_json = w.HTML()
        self.event_json.add_class("rl-event-json")
        self.event_raw = w.HTML()
        self.event_raw.add_class("rl-event-raw")

        self.schema_button = w.Button(description="Refresh schema and objects", icon="refresh")
        self.schema_type = w.Dropdown(options=[], description="type")
        self.schema_view = w.HTML("<i>Refresh to fold every object that arrived into the field catalog.</i>")
        self.object_pick = w.Dropdown(options=[], description="object", layout=w.Layout(width="44em"))
        self.versions_view = w.HTML()
        self.changes_view = w.HTML()

        self._scope_controls = (self.api, self.kind, self.cluster, self.project, self.types, self.namespace)
        self._connect_controls = (
            self.url,
            self.cred_source,
            self.token,
            self.access_key,
            self.secret_key,
            self.cookie,
            self.cacert,
            self.insecure,
            self.simulate_button,
            self.connect_button,
            self.record_toggle,
            self.record_path,
        )
        connection = w.VBox(
            [
                w.HTML("<b>Server and credential</b>"),
                self.url,
                self.cred_source,
                self.token,
                w.HBox([self.access_key, self.secret_key]),
                self.cookie,
                self.credential,
                self.cacert,
                self.insecure,
                w.HBox([self.connect_button, self.simulate_button]),
            ]
        )
        scope = w.VBox(
            [
                w.HTML("<b>Scope and types</b>"),
                w.HBox([self.api, self.kind]),
                w.HBox([self.cluster, self.project]),
                w.HBox([self.types, self.namespace]),
                self.endpoint,
                w.HBox([self.record_toggle, self.record_path]),
                self.record_status,
                w.HBox([self.start_button, self.stop_button]),
            ]
        )
        live = w.VBox(
            [
                w.HBox([self.status]),
                self.timeline,
                self.rate,
                w.HBox([self.counts, w.VBox([w.HTML("<b>last events</b> (select one)"), self.events])]),
                w.HBox(
                    [
                        w.VBox([w.HTML("<b>object</b>"), self.event_json], layout=w.Layout(width="50%")),
                        w.VBox([w.HTML("<b>raw frame</b>"), self.event_raw], layout=w.Layout(width="50%")),
                    ]
                ),
            ]
        )
        schema = w.VBox([self.schema_button, self.schema_type, self.schema_view])
        objects = w.VBox(
            [
                self.object_pick,
                w.HTML("<b>versions</b>"),
                self.versions_view,
                w.HTML("<b>field changes</b>"),
                self.changes_view,
            ]
        )
        self.tabs = w.Tab(children=[live, schema, objects], titles=("live", "schema", "objects"))
        self.widget = w.VBox([connection, scope, self.message, self.tabs])
        self.widget.add_class("rl-explorer")

        self.url.observe(self._url_changed, names="value")
        self.cred_source.observe(self._source_changed, names="value")
        for field in (self.token, self.secret_key, self.cookie):
            field.observe(self._secret_typed, names="value")
        for control in self._scope_controls:
            control.observe(self._scope_changed, names="value")
        self.events.observe(self._event_picked, names="value")
        self.schema_type.observe(self._schema_type_picked, names="value")
        self.object_pick.observe(self._object_picked, names="value")
        self.connect_button.on_click(lambda _: self.connect())
        self.simulate_button.on_click(lambda _: self.try_simulator())
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.schema_button.on_click(lambda _: self.refresh_schema())
        self._source_changed({"new": self.cred_source.value})
        self._show_scope_controls()

    def __repr__(self) -> str:
        base = self.server.base if self.server else (self.url.value or "no server")
        state = self.capture.stats.state if self.capture else ("connected" if self._rest else "not connected")
        return f"<Explorer {base} {self._scope_text()}: {state}>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # --- messages ----------------------------------------------------------------------------------------
    def show_error(self, exc: BaseException, doing: str) -> None:
        """Put an error in the widget in plain words, with what to do."""
        hint = next((h for kind, h in _HINTS if isinstance(exc, kind)), "")
        if not isinstance(exc, RancherlabError):
            text = f"{doing} failed: {type(exc).__name__}: {exc}"
        else:
            text = f"{doing} failed: {exc}"
        self.message.value = R.error_html(text + (f"\n{hint}" if hint else ""))

    def _say(self, text: str) -> None:
        self.message.value = R.info_html(text)

    # --- server and credential ---------------------------------------------------------------------------
    @_guarded("reading the server URL")
    def _url_changed(self, change: dict[str, Any]) -> None:
        if self._quiet or not change["new"].strip():
            return
        self._forget_connection()
        parsed = parse_server_url(change["new"])
        if parsed.userinfo:  # https://access:secret@host: take the key out of the field at once
            access, secret_key = parsed.userinfo
            self._set_url(parsed.base + (parsed.scope.subscribe_path if parsed.scope else ""))
            self._set_credentials(Credentials.api_key(access, secret_key), "the URL")
            self.cred_source.value = "apikey"
        self._pasted = parsed if parsed.scope is not None else None
        if parsed.scope is not None:
            self._apply_pasted(parsed)
        self._say(f"server {parsed.base}" + (f", scope {parsed.scope}" if parsed.scope else "") + ": now Connect")

    def _set_url(self, text: str) -> None:
        self._quiet = True
        try:
            self.url.value = text
        finally:
            self._quiet = False

    def _apply_pasted(self, parsed: ServerURL) -> None:
        """A pasted subscribe URL names API, scope, cluster/project and types: show them in the controls."""
        scope = parsed.scope
        assert scope is not None
        self._quiet = True
        try:
            self.api.value = scope.dialect
            if scope.dialect == "norman":
                self.kind.value = scope.kind
            cluster = _cluster_of(scope)
            if cluster:
                self.cluster.options = _with_option(self.cluster.options, cluster)
                self.cluster.value = cluster
            if scope.project_id:
                self.project.options = _with_option(self.project.options, scope.project_id)
                self.project.value = scope.project_id
            if parsed.types:
                options = list(self.types.options)
                self.types.options = options + [t for t in parsed.types if t not in options]
                self.types.value = tuple(parsed.types)
        finally:
            self._quiet = False
        self._show_scope_controls()

    def _source_changed(self, change: dict[str, Any]) -> None:
        source = change["new"]
        shown = {"token": (self.token,), "apikey": (self.access_key, self.secret_key), "cookie": (self.cookie,)}
        for field in (self.token, self.access_key, self.secret_key, self.cookie):
            field.layout.display = None if field in shown.get(source, ()) else "none"
        if source in ("env", "cli"):
            self.credential.value = f"credential: from the {'environment' if source == 'env' else 'Rancher CLI config'}"
        elif self._credentials is not None:
            self._show_credential()
        self._forget_connection()

    @_guarded("reading the credential")
    def _secret_typed(self, change: dict[str, Any]) -> None:
        field, value = change["owner"], change["new"]
        if not value:
            return
        field.value = ""  # at once: the secret must not stay in widget state
        if field is self.token:
            cred = Credentials.bearer(value)
        elif field is self.cookie:
            cred = Credentials.cookie(value)
        else:
            access = self.access_key.value.strip()
            if not access:
                raise CredentialsError("type the access key (token-xxxxx) first, then the secret key again")
            cred = Credentials.api_key(access, value)
        del value
        self._set_credentials(cred, "typed")
        self._forget_connection()
        self._say("credential taken (the field was cleared); now Connect")

    def _set_credentials(self, cred: Credentials, origin: str) -> None:
        self._credentials = cred
        self._cred_origin = origin
        self._show_credential()

    def _show_credential(self) -> None:
        cred = self._credentials
        if cred is not None:
            self.credential.value = (
                f"credential: <code>{html.escape(cred.masked)}</code> ({cred.scheme}, {html.escape(self._cred_origin)})"
            )

    def _resolve(self) -> Server:
        url = self.url.value.strip() or None
        cacert = self.cacert.value.strip() or None
        insecure = True if self.insecure.value else None
        source = self.cred_source.value
        if source == "env":
            server = resolve_server(url, None, cacert=cacert, insecure=insecure, env=self._env, cli_config=False)
            if server.credentials is None:
                raise CredentialsError(
                    "the environment has no credential for this server: set RANCHER_TOKEN_KEY (or RANCHER_ACCESS_KEY "
                    "and RANCHER_SECRET_KEY) with RANCHER_URL, or pick 'bearer token' and paste one"
                )
        elif source == "cli":
            if self._cli_config is False:
                raise CredentialsError("this Explorer was made with cli_config=False; pick another credential source")
            env = {k: v for k, v in self._env.items() if k == ENV_CONFIG_DIR}
            server = resolve_server(url, None, cacert=cacert, insecure=insecure, env=env, cli_config=self._cli_config)
            if server.credentials is None:
                raise CredentialsError(
                    "the Rancher CLI config has no credential for this server: run 'rancher login' for it, or pick "
                    "'bearer token' and paste one"
                )
        else:
            if url is None:
                raise CredentialsError("type the server URL first (e.g. https://rancher.example.com), then Connect")
            if self._credentials is None:
                field = {"token": "token", "apikey": "access key and secret key", "cookie": "R_SESS"}[source]
                raise CredentialsError(f"no credential yet: type it into the {field} field and press Enter")
            server = resolve_server(url, self._credentials, cacert=cacert, insecure=insecure, env={}, cli_config=False)
        if not url:
            self._set_url(server.base)
        return server

    def _forget_connection(self) -> None:
        if self._rest is not None and not self._running():
            rest, self._rest, self.server = self._rest, None, None
            try:
                self._run(rest.aclose())
            except Exception:  # noqa: BLE001, S110 - closing a client we no longer use
                pass
            self.start_button.disabled = True

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return shared().call(coro, timeout)

    @_guarded("starting the simulator")
    def try_simulator(self) -> None:
        """Start the embedded simulator (once), fill URL and credential from it, and connect."""
        from ..simulator import Simulator

        if self.simulator is None:
            self.simulator = Simulator(**{"seed": 1, **self._simulator_options}).start()
        self._set_url(self.simulator.url)
        self._set_credentials(Credentials.bearer(self.simulator.token), "simulator")
        self._quiet = True
        try:
            self.cred_source.value = "token"
        finally:
            self._quiet = False
        self.connect()

    @_guarded("connecting")
    def connect(self) -> bool:
        """Check the credential with a REST call and fill clusters, projects, types and namespaces."""
        if self._running():
            raise UsageError("a capture is running: Stop it before connecting elsewhere")
        self.message.value = ""
        self._forget_connection()
        server = self._resolve()
        rest = RestClient(server, ssl_context=server.ssl_context())
        try:
            clusters = self._run(rest.clusters())  # 401 here: the credential is not accepted
        except BaseException:
            self._run(rest.aclose())
            raise
        self.server, self._rest = server, rest
        pasted, self._pasted = self._pasted, None  # what a pasted subscribe URL named wins over the defaults
        keep = _cluster_of(pasted.scope) if pasted and pasted.scope else None
        keep = keep or self.cluster.value
        self._quiet = True
        try:
            options = [(f"{c.get('name') or c['id']} ({c['id']})", c["id"]) for c in clusters]
            ids = [c["id"] for c in clusters]
            downstream = [i for i in ids if i != "local"]
            if pasted and keep and keep not in ids:
                options.append((keep, keep))  # a pasted cluster the server did not list: the stream will say
                ids.append(keep)
            self.cluster.options = options
            self.cluster.value = keep if keep in ids else (downstream or ids or [None])[0]
        finally:
            self._quiet = False
        self._load_projects(pasted.scope.project_id if pasted and pasted.scope else None)
        self._load_types(pasted.types if pasted else ())
        self._load_namespaces()
        self._show_scope_controls()
        self.start_button.disabled = False
        self._say(
            f"connected to {server.base} as {server.credentials.masked if server.credentials else 'nobody'}; "
            "pick scope and types, then Start"
        )
        return True

    # --- scope -------------------------------------------------------------------------------------------
    def scope(self) -> Scope:
        """The scope the controls describe."""
        cluster = self.cluster.value or None
        if self.api.value == "steve":
            return Scope("steve", cluster)
        if self.kind.value == "global" or cluster is None:
            return Scope("global")
        if self.kind.value == "cluster" or not self.project.value:
            return Scope("cluster", cluster)
        return Scope("project", cluster, self.project.value.split(":", 1)[1])

    def _scope_text(self) -> str:
        try:
            return str(self.scope())
        except RancherlabError:
            return "(no scope)"

    @_guarded("changing the scope")
    def _scope_changed(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        owner = change["owner"]
        if self._rest is not None:
            if owner is self.cluster:
                self._load_projects()
            if owner in (self.api, self.kind, self.cluster, self.project):
                self._load_types()
            if owner in (self.api, self.cluster):
                self._load_namespaces()
        self._show_scope_controls()

    def _show_scope_controls(self) -> None:
        steve = self.api.value == "steve"
        self.kind.layout.display = "none" if steve else None
        self.project.layout.display = None if not steve and self.kind.value == "project" else "none"
        self.namespace.layout.display = None if steve else "none"
        self.cluster.layout.display = "none" if not steve and self.kind.value == "global" else None
        try:
            scope = self.scope()
            types = ", ".join(self.types.value) or ("(pick at least one)" if steve else "(all)")
            self.endpoint.value = (
                f"scope <code>{html.escape(str(scope))}</code> &nbsp; endpoint "
                f"<code>{html.escape(scope.subscribe_path)}</code> &nbsp; types <code>{html.escape(types)}</code>"
            )
        except RancherlabError as exc:
            self.endpoint.value = R.error_html(str(exc))

    def _load_projects(self, pasted: str | None = None) -> None:
        assert self._rest is not None
        keep = pasted or self.project.value
        projects = self._run(self._rest.projects(self.cluster.value)) if self.cluster.value else []
        options = [(f"{p.get('name') or p['id']} ({p['id']})", p["id"]) for p in projects]
        ids = [p["id"] for p in projects]
        default = [p["id"] for p in projects if p.get("name") == "Default"] or ids
        self._quiet = True
        try:
            if pasted and pasted not in ids:
                options.append((pasted, pasted))  # a pasted project the server did not list: the stream will say
                ids.append(keep)
            self.project.options = options
            self.project.value = keep if keep in ids else (default[0] if default else None)
        finally:
            self._quiet = False

    def _load_types(self, pasted: tuple[str, ...] = ()) -> None:
        assert self._rest is not None
        try:
            types = self._run(self._rest.types(self.scope()))
        except RancherlabError as exc:
            self.show_error(exc, f"listing the types of {self._scope_text()}")
            types = []
        preferred = [t for t in ("pod", "deployment", "namespace", "cluster") if t in types]
        self._quiet = True
        try:
            keep = tuple(t for t in self.types.value if t in types)
            self.types.options = types + [t for t in pasted if t not in types]
            self.types.value = pasted or keep or tuple(preferred[:1]) or tuple(types[:1])
        finally:
            self._quiet = False

    def _load_namespaces(self) -> None:
        assert self._rest is not None
        names: list[str] = []
        if self.api.value == "steve":
            try:
                listing = self._run(self._rest.list_watch(self.scope(), Watch("namespace")))
                names = sorted(str((o.get("metadata") or {}).get("name") or o.get("id")) for o in listing.items)
            except RancherlabError as exc:
                self.show_error(exc, "listing the namespaces")
        self._quiet = True
        try:
            keep = self.namespace.value
            self.namespace.options = [("(all)", ""), *((n, n) for n in names)]
            self.namespace.value = keep if keep in names else ""
        finally:
            self._quiet = False

    # --- capture -----------------------------------------------------------------------------------------
    def _running(self) -> bool:
        return self.source is not None and self.source.running

    @_guarded("starting the capture")
    def start(self) -> Capture | None:
        """Start capturing what the controls say; the controls lock until Stop (or the end)."""
        if self._running():
            raise UsageError("a capture is already running: Stop it first")
        if self.server is None and not self.connect():
            return None
        server = self.server
        assert server is not None
        scope = self.scope()
        types = list(self.types.value)
        watches: list[Watch] = []
        if scope.dialect == "steve":
            if not types:
                raise UsageError(
                    "Steve watches one type per watch and none is picked: select at least one type in 'types' "
                    "(Ctrl/Shift-click for several), then Start"
                )
            ns = self.namespace.value or None
            watches, types = [Watch(t, namespace=ns) for t in types], []
        if (
            self.record_toggle.value
            and self.record_path.value == self._auto_record
            and os.path.exists(self._auto_record)
        ):
            self._auto_record = self.record_path.value = _recording_name()  # the name we chose is taken: a new one
        record = self.record_path.value.strip() if self.record_toggle.value else None
        if self.record_toggle.value and not record:
            raise UsageError("recording is on but the path is empty: type a file name ending in .jsonl or .jsonl.gz")
        self.tally.reset()
        self._drawn, self._selected = -1, None
        self.message.value = ""
        self.capture = capture(
            server.base,
            scope,
            types=types,
            watches=watches,
            credentials=server.credentials,
            cacert=server.tls.ca_pem,
            insecure=server.tls.insecure or None,
            record=record,
            on_event=self.tally.add,
            env={},
            cli_config=False,
            **self._tuning,
        )
        self.source = LiveSource(self.capture, self.tally)
        self._lock(True)
        event_loop().call_soon_threadsafe(self._tick, self.source)
        return self.capture

    @_guarded("stopping the capture")
    def stop(self) -> None:
        """Stop the capture: what was received stays (and is written when recording); the controls unlock."""
        if self.source is not None and self.source.running:
            self.source.stop()
        self._lock(False)
        event_loop().call_soon_threadsafe(self._render)

    def close(self) -> None:
        """Stop capturing, release the REST connection and stop the simulator this Explorer started."""
        self.stop()
        self._forget_connection()
        if self.simulator is not None:
            self.simulator.close()
            self.simulator = None

    def _lock(self, running: bool) -> None:
        for control in (*self._scope_controls, *self._connect_controls):
            control.disabled = running
        self.start_button.disabled = running or self._rest is None
        self.stop_button.disabled = not running

    def frame(self) -> Any:
        """The captured events kept in memory as a DataFrame (see `rancherlab.frame`)."""
        from ..analysis import frame

        return frame(list(self.capture.events) if self.capture else [])

    # --- the live panel (rancherlab's loop thread) -------------------------------------------------------
    def _tick(self, source: EventSource) -> None:
        """The panel's timer, on rancherlab's loop: redraw, then again in `refresh` s while the source runs.

        One timer per source: a timer whose source was replaced (Stop, then Start again) ends.
        """
        if source is not self.source:
            return
        running = source.running
        try:
            if not running:
                self._lock(False)
            self._render()
        except Exception as exc:  # noqa: BLE001 - a drawing bug must show, and must not stop the timer
            self.show_error(exc, "drawing the live panel")
        finally:
            if running:
                event_loop().call_later(self.refresh, self._tick, source)

    def _render(self) -> None:
        source = self.source
        if source is None:
            return
        tally = self.tally
        link = tally.link
        stats = source.stats()
        status = R.link_line(link, stats, source.running, source.retry_cap(link.empty_closes))
        error = source.error
        if error is not None:
            hint = next((h for kind, h in _HINTS if isinstance(error, kind)), "")
            status += R.error_html(f"the capture ended: {error}" + (f"\n{hint}" if hint else ""))
        if tally.watch_errors:
            status += R.error_html(
                "watch stopped by the server: " + "; ".join(tally.watch_errors[-3:]) + "\nWhat to do: unselect that "
                "type (this credential may not watch it) or ask for the permission; the other types go on."
            )
        changed = _set(self.status, status)
        changed |= _set(self.timeline, R.timeline(link))
        if tally.updates != self._drawn:
            self._drawn = tally.updates
            total, counts, latest = tally.snapshot()
            rate = tally.rate()
            changed |= _set(self.rate, f"<b class='rl-total'>{total}</b> events · <b>{rate:.1f}</b> events/s")
            changed |= _set(self.counts, R.counts_table(counts))
            options = [(R.event_label(e), e.seq) for e in reversed(latest[-LIST_ROWS:])]
            if options != list(self.events.options):
                self._listing = True  # a new options list selects its first row: keep the user's pick instead
                try:
                    self.events.options = options
                    seqs = [seq for _, seq in options]
                    self.events.value = self._selected if self._selected in seqs else None
                finally:
                    self._listing = False
                changed = True
        recorded = source.recorded()
        if recorded is not None:
            path, size, written = recorded
            changed |= _set(
                self.record_status,
                f"recording <code>{html.escape(str(path))}</code>: {size:,} bytes, {written:,} events written",
            )
        if changed:
            self.renders += 1

    # --- event detail, schema and objects (on demand, the kernel's thread) ---------------------------------
    @_guarded("showing the event")
    def _event_picked(self, change: dict[str, Any]) -> None:
        seq = change["new"]
        if seq is None or self._listing:
            return  # the list moved on; the detail keeps showing the event picked
        self.show_event(seq)

    def show_event(self, seq: int) -> None:
        """Show the event with this `seq` (one of the last events) as formatted JSON and its raw frame."""
        event = self.tally.find(seq)
        if event is None:
            raise UsageError(f"event #{seq} is no longer among the last {self.tally.rows} kept; pick a newer one")
        self._selected = seq
        self.event_json.value, self.event_raw.value = R.event_detail(event)

    @_guarded("refreshing the schema")
    def refresh_schema(self) -> None:
        """Fold every object that arrived into the field catalog and list the objects seen."""
        catalog = self.tally.fold()
        types = catalog.types()
        keep = self.schema_type.value
        self.schema_type.options = [(f"{t} ({d}, {n} versions)", (d, t)) for d, t, n in types]
        if keep in [(d, t) for d, t, _ in types]:
            self.schema_type.value = keep
        self._schema_type_picked({"new": self.schema_type.value})
        keep_obj = self.object_pick.value
        objects = self.tally.objects()
        self.object_pick.options = [(f"{t} {i} ({d})", (d, t, i)) for d, t, i in objects]
        if keep_obj in objects:
            self.object_pick.value = keep_obj

    @_guarded("showing the schema")
    def _schema_type_picked(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if not key:
            return
        dialect, type_name = key
        counts = {(d, t): n for d, t, n in self.tally.catalog.types()}
        self.schema_view.value = R.schema_table(self.tally.catalog.rows(dialect, type_name), counts.get(key, 0))

    @_guarded("showing the object")
    def _object_picked(self, change: dict[str, Any]) -> None:
        key: ObjectKey | None = change["new"]
        if not key:
            return
        from ..analysis import diffs, frame

        versions = self.tally.versions(key)
        self.versions_view.value = R.versions_table(versions)
        changes = diffs(frame(versions))
        self.changes_view.value = R.changes_table(changes.to_dict("records"))


def _recording_name() -> str:
    """`recordings/explorer-<UTC time>.jsonl.gz`, unique to the microsecond."""
    return f"recordings/explorer-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.jsonl.gz"


def _cluster_of(scope: Scope) -> str | None:
    """The cluster a scope names; Steve's `/v1/subscribe` is the local cluster's."""
    if scope.kind == "steve":
        return scope.cluster or "local"
    return scope.cluster


def _set(widget: w.HTML, value: str) -> bool:
    if widget.value == value:
        return False
    widget.value = value
    return True


def _with_option(options: Any, value: str) -> list[Any]:
    out = list(options)
    if value not in [o[1] if isinstance(o, tuple) else o for o in out]:
        out.append((value, value))
    return out


__all__ = ["Explorer"]
