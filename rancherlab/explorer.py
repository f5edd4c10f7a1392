"""The Explorer: ipywidgets controls to pick a scope and types, connect, and watch events arrive.

The credential never enters widget state (state is synced to the browser and saved in notebooks): it
comes from the `credentials=` argument, the environment or the Rancher CLI config, and the widget only
shows it masked. The view is refreshed from rancherlab's own loop thread by setting traits on a timer,
so receiving never waits on the UI.
"""

from __future__ import annotations

import html
import os
import threading
from collections import Counter, deque
from typing import Any, Coroutine, Mapping, TypeVar

import ipywidgets as w

from ._loop import shared
from .capture import Capture, capture, event_loop
from .credentials import Credentials, resolve_server
from .protocol import Event
from .rest import RestClient
from .scope import Scope

T = TypeVar("T")
_NORMAN_KINDS = ("global", "cluster", "project")


class Explorer:
    """`Explorer(url, credentials)` in a notebook cell shows the controls; `.capture` is the running capture."""

    def __init__(
        self,
        url: str | None = None,
        credentials: Credentials | str | None = None,
        *,
        cacert: str | None = None,
        insecure: bool | None = None,
        record: str | os.PathLike[str] | None = None,
        refresh: float = 0.5,
        rows: int = 12,
        env: Mapping[str, str] | None = None,
        cli_config: Any = None,
        **tuning: Any,
    ) -> None:
        self.server = resolve_server(url, credentials, cacert=cacert, insecure=insecure, env=env, cli_config=cli_config)
        self._connect_args = {
            "url": self.server.base,
            "credentials": self.server.credentials,
            "cacert": cacert,
            "insecure": insecure,
            "env": env,
            "cli_config": cli_config,
            **tuning,
        }
        self.record = record
        self.refresh = refresh
        self.rows = rows
        self.capture: Capture | None = None
        self._counts: Counter[tuple[str, str]] = Counter()
        self._latest: deque[Event] = deque(maxlen=rows)
        self._lock = threading.Lock()
        self._rest = RestClient(self.server, ssl_context=self.server.ssl_context())

        cred = self.server.credentials.masked if self.server.credentials else "none"
        self.header = w.HTML(
            f"<b>{html.escape(self.server.base)}</b> &nbsp; credential: "
            f"<code>{html.escape(cred)}</code> (from {html.escape(self.server.source)})"
        )
        self.api = w.ToggleButtons(
            options=[("Norman /v3", "norman"), ("Steve /v1", "steve")], value="norman", description="API"
        )
        self.kind = w.Dropdown(options=list(_NORMAN_KINDS), value="project", description="scope")
        self.cluster = w.Dropdown(options=[], description="cluster")
        self.project = w.Dropdown(options=[], description="project")
        self.types = w.SelectMultiple(options=[], rows=8, description="types")
        self.namespace = w.Text(description="namespace", placeholder="(all)")
        self.endpoint = w.HTML()
        self.connect_button = w.Button(description="Connect", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.status = w.HTML("not connected")
        self.counts = w.HTML()
        self.latest = w.HTML()
        self.widget = w.VBox(
            [
                self.header,
                w.HBox([self.api, self.kind]),
                w.HBox([self.cluster, self.project]),
                w.HBox([self.types, self.namespace]),
                self.endpoint,
                w.HBox([self.connect_button, self.stop_button, self.status]),
                w.HBox([self.counts, self.latest]),
            ]
        )
        for control in (self.api, self.kind, self.cluster, self.project, self.types, self.namespace):
            control.observe(self._changed, names="value")
        self.connect_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self._load_clusters()

    def __repr__(self) -> str:
        state = self.capture.stats.state if self.capture else "not connected"
        return f"<Explorer {self.server.base} {self.scope()}: {state}>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # --- the scope the controls describe ---------------------------------------------------------------
    def scope(self) -> Scope:
        cluster = self.cluster.value or None
        if self.api.value == "steve":
            return Scope("steve", cluster)
        if self.kind.value == "global" or cluster is None:
            return Scope("global")
        if self.kind.value == "cluster" or not self.project.value:
            return Scope("cluster", cluster)
        return Scope("project", cluster, self.project.value.split(":", 1)[1])

    def _changed(self, change: dict[str, Any]) -> None:
        owner = change["owner"]
        if owner is self.api:
            self.kind.layout.display = "none" if self.api.value == "steve" else None
        if owner is self.cluster:
            self._load_projects()
        if owner in (self.api, self.kind, self.cluster, self.project):
            self.project.layout.display = (
                None if self.api.value == "norman" and self.kind.value == "project" else "none"
            )
            self._load_types()
        self._show_endpoint()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return shared().call(coro, timeout)

    def _load_clusters(self) -> None:
        clusters = self._run(self._rest.clusters())
        self.cluster.options = [(f"{c.get('name') or c['id']} ({c['id']})", c["id"]) for c in clusters]
        downstream = [c["id"] for c in clusters if c["id"] != "local"]
        if downstream:
            self.cluster.value = downstream[0]
        self._load_projects()
        self._load_types()
        self._show_endpoint()

    def _load_projects(self) -> None:
        if not self.cluster.value:
            self.project.options = []
            return
        projects = self._run(self._rest.projects(self.cluster.value))
        self.project.options = [(f"{p.get('name') or p['id']} ({p['id']})", p["id"]) for p in projects]
        default = [p["id"] for p in projects if p.get("name") == "Default"] or [p["id"] for p in projects]
        self.project.value = default[0] if default else None

    def _load_types(self) -> None:
        try:
            types = self._run(self._rest.types(self.scope()))
        except Exception as exc:  # the view says why; the controls stay usable
            self.status.value = f"<span style='color:#b00'>cannot list types: {html.escape(str(exc))}</span>"
            types = []
        preferred = [t for t in ("pod", "deployment", "namespace", "cluster") if t in types]
        self.types.options = types
        self.types.value = tuple(preferred[:1]) or tuple(types[:1])

    def _show_endpoint(self) -> None:
        scope = self.scope()
        self.endpoint.value = f"scope <code>{html.escape(str(scope))}</code> &nbsp; endpoint <code>{html.escape(scope.subscribe_path)}</code>"

    # --- capture ---------------------------------------------------------------------------------------
    def start(self) -> Capture:
        """Connect with what the controls say; the previous capture, if any, is stopped first."""
        from .protocol.steve import Watch

        self.stop()
        scope = self.scope()
        types = list(self.types.value)
        watches: list[Watch] = []
        if scope.dialect == "steve":
            ns = self.namespace.value.strip() or None
            watches = [Watch(t, namespace=ns) for t in types]
            types = []
        with self._lock:
            self._counts.clear()
            self._latest.clear()
        self.capture = capture(
            scope=scope, types=types, watches=watches, record=self.record, on_event=self._on_event, **self._connect_args
        )
        self.connect_button.disabled, self.stop_button.disabled = True, False
        event_loop().call_soon_threadsafe(self._tick)
        return self.capture

    def stop(self) -> None:
        if self.capture is not None:
            self.capture.stop()
        self.connect_button.disabled, self.stop_button.disabled = False, True
        self._render()

    def close(self) -> None:
        """Stop capturing and release the REST connection."""
        self.stop()
        self._run(self._rest.aclose())

    def frame(self) -> Any:
        """The captured events as a DataFrame (see `rancherlab.frame`)."""
        from .analysis import frame

        return frame(self.capture.events if self.capture else [])

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self._counts[(event.name, event.type or "")] += 1
            if not event.is_ping:
                self._latest.append(event)

    def _tick(self) -> None:
        self._render()
        if self.capture is not None and self.capture.running:
            event_loop().call_later(self.refresh, self._tick)

    def _render(self) -> None:
        with self._lock:
            counts = sorted(self._counts.items())
            latest = list(self._latest)
        if self.capture is not None:
            s = self.capture.stats
            error = f" — <span style='color:#b00'>{html.escape(s.error)}</span>" if s.error else ""
            self.status.value = (
                f"{s.state}: {s.events} events, {s.connections} connection(s), {s.disconnects} disconnect(s){error}"
            )
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{html.escape(t)}</td><td style='text-align:right'>{c}</td></tr>"
            for (n, t), c in counts
        )
        self.counts.value = f"<table><tr><th>name</th><th>type</th><th>count</th></tr>{rows}</table>"
        lines = "".join(
            f"<tr><td>{e.seq}</td><td>{html.escape(e.kind)}</td><td>{html.escape(e.name)}</td>"
            f"<td>{html.escape(e.type or '')}</td><td>{html.escape(e.id or '')}</td></tr>"
            for e in reversed(latest)
        )
        self.latest.value = (
            f"<table><tr><th>seq</th><th>kind</th><th>name</th><th>type</th><th>id</th></tr>{lines}</table>"
        )
