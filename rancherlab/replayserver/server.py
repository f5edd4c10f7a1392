"""The replay server's async core: a recording served at its endpoint as the Rancher it came from.

One websockets server answers the upgrade and the plain HTTP (the page at `/`, the REST lists) in its
`process_request` hook, in the order Rancher's handler chain checks things: browser origin, credential,
route, gorilla's origin check, upgrade.

Timing. Norman sockets and fresh Steve watches each get their own replay from the start of the
recording, so every client sees what the recorded client saw, paced by `speed`. The REST lists and
Steve watches resumed from a `resourceVersion` follow one *replay clock* started with the server:
position = seconds since start × speed (modulo the recording's length with `loop`, else held at its
end). A client that lists at position p gets the state at p and its revision, and a watch from that
revision continues with the recorded events after p at the moments they happen on that clock, so the
list-then-watch pattern sees one seamless stream, as against a live Rancher. Norman has no revision to
watch from, so its sockets keep their own replay from the start: a Norman client that listed at p sees
the changes before p once more, and ends at the same state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import weakref
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, Self
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._wsserver import (
    MAX_CLIENT_MESSAGE,
    MAX_WATCHES,
    TOO_MANY_WATCHES,
    CredentialScrubbingLogger,
    Outbox,
    TrackedConnection,
    close_server,
    every,
    http_response,
    is_upgrade,
)
from ..errors import UsageError
from ..protocol import auth, norman, steve
from ..protocol._json import dumps
from ..protocol.event import DISCONNECTED
from ..protocol.steve import Subscribe
from ._script import Frame, RecordedWatch, Script, StateTimeline, echo_key, load_script, normalize_path, revision_after

log = logging.getLogger("rancherlab.replayserver")

_SUBSCRIBE_PATH: Final = re.compile(
    r"^(?:/v3(?:/(?:clusters?|projects?)/[^/]+)?|(?:/k8s/clusters/[^/]+)?/v1)/subscribe$"
)
_PAGE_PATHS: Final = frozenset({"/", "/index.html"})
_INFO_MARK: Final = "__RANCHERLAB_REPLAY_INFO__"
_NORMAN_CONTROL: Final = frozenset({"limit", "marker", "sort", "order", "sockId", "_", "exclude", "include"})
_NO_REVISION: Final = ("", "0", "-1")  # Steve's proxy store reads these as "no revision"
MIN_PERIOD: Final = 1.0  # recorded seconds: a loop never restarts faster than this, however short the recording


@dataclass
class ReplayOptions:
    """How a recording is served. `token=None` accepts any credential, or none."""

    speed: float = 1.0
    loop: bool = False
    token: str | None = field(default=None, repr=False)
    reproduce_drops: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    norman_ping: float = norman.PING_INTERVAL
    steve_ping: float = steve.PING_INTERVAL

    def __post_init__(self) -> None:
        if not isinstance(self.speed, (int, float)) or math.isnan(self.speed) or self.speed <= 0:
            raise UsageError("speed must be a positive number (1.0 = as recorded, 10 = ten times faster)")
        if self.loop and math.isinf(self.speed):
            raise UsageError("loop needs a finite speed: an infinitely fast loop would only flood the clients")
        for name in ("norman_ping", "steve_ping"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be a positive number of seconds")


@dataclass(frozen=True)
class _Route:
    wanted: frozenset[str] | None = None  # Norman resourceTypes the client asked for


class AsyncReplayServer:
    """Serves one recording; use `async with` or `start()`/`stop()` inside a running loop."""

    def __init__(self, path: str | os.PathLike[str], options: ReplayOptions | None = None) -> None:
        self.recording = Path(path)
        self.options = options or ReplayOptions()
        self.port = self.options.port
        self._script: Script | None = None
        self._timeline: StateTimeline | None = None
        self._server: Server | None = None
        # filled before websockets checks the rest of the handshake (a request without Sec-WebSocket-Key never
        # reaches the handler that takes its route out): weak, so a refused handshake leaves nothing behind
        self._routes: weakref.WeakKeyDictionary[ServerConnection, _Route] = weakref.WeakKeyDictionary()
        self._page: bytes = b""
        self._clock_start = 0.0

    def __repr__(self) -> str:
        state = self.url if self._server else "stopped"
        return f"<AsyncReplayServer {self.recording.name} {state} speed={self.options.speed:g}>"

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._script = await loop.run_in_executor(None, load_script, self.recording)
        self._timeline = StateTimeline(self._script)
        self._page = self._render_page()
        self._server = await serve(
            self._handler,
            self.options.host,
            self.port,
            process_request=self._process_request,
            ping_interval=None,  # Rancher sends application pings only
            max_size=MAX_CLIENT_MESSAGE,
            server_header=None,
            logger=CredentialScrubbingLogger(log),
            create_connection=TrackedConnection,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._clock_start = loop.time()

    async def stop(self) -> None:
        if self._server is not None:
            await close_server(self._server)
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def script(self) -> Script:
        if self._script is None:
            raise RuntimeError("the replay server is not running: call start() or use it as a context manager")
        return self._script

    @property
    def url(self) -> str:
        """`http://host:port`: the page is at `/`, the REST lists under it."""
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        """The websocket URL of the recorded endpoint (path and query as recorded)."""
        return self.url.replace("http", "ws", 1) + self.script.header.endpoint

    # --- the replay clock ---------------------------------------------------------------------
    @property
    def period(self) -> float:
        """Length of one pass through the recording, in recorded seconds."""
        return max(self.script.end, MIN_PERIOD)

    def position(self, now: float | None = None) -> float:
        """Where the replay clock stands, in recorded seconds since the recording's first event."""
        now = asyncio.get_running_loop().time() if now is None else now
        if math.isinf(self.options.speed):
            return self.script.end
        elapsed = (now - self._clock_start) * self.options.speed
        return elapsed % self.period if self.options.loop else min(elapsed, self.script.end)

    def _delay(self, recorded_seconds: float) -> float:
        return 0.0 if math.isinf(self.options.speed) else recorded_seconds / self.options.speed

    # --- HTTP, in the order Rancher's handler chain checks things -------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        host = headers.get("Host", "")
        parts = urlsplit(request.path)
        path, query = normalize_path(unquote(parts.path)), parse_qs(parts.query, keep_blank_values=True)
        if path in _PAGE_PATHS and not is_upgrade(headers):
            return http_response(
                200,
                self._page,
                content_type="text/html; charset=utf-8",
                extra={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
            )
        if auth.browser_origin_rejected(headers, host):
            return http_response(403, auth.ORIGIN_NOT_ALLOWED_BODY)
        token = self.options.token
        if token is not None and auth.token_from_request(headers.get("Authorization"), headers.get("Cookie")) != token:
            return http_response(401, auth.UNAUTHORIZED_BODY, extra={"X-API-Cattle-Auth": "false"})
        script = self.script
        if _SUBSCRIBE_PATH.match(path):
            if path != script.path:
                return _not_found(script, f"this replay serves {script.path} only")
            if auth.gorilla_origin_rejected(headers.get("Origin"), host):
                return http_response(403, auth.FORBIDDEN_BODY, content_type="text/plain; charset=utf-8")
            if not is_upgrade(headers):
                return http_response(400, "Bad Request\n", content_type="text/plain; charset=utf-8")
            route = _Route()
            if script.dialect == "norman":
                connection.protocol.available_extensions = []  # gorilla's Upgrader{} offers no compression
                if "resourceTypes" in query:
                    wanted = frozenset(t for t in query["resourceTypes"] if t in script.known_types())
                    if not wanted:
                        return http_response(404, norman.NO_TYPES_BODY)
                    route = _Route(wanted)
            self._routes[connection] = route
            return None
        if request.headers.get("Upgrade"):
            return _not_found(script, "not a subscribe endpoint")
        return self._rest(path, query, f"http://{host}")

    def _render_page(self) -> bytes:
        script = self.script
        messages: list[str] = []
        expected: dict[str, int] = {}
        if script.dialect == "steve":
            for watch in script.watches.values():
                if watch.message is None or not watch.started:
                    continue
                doc = json.loads(watch.message)
                doc.pop("resourceVersion", None)  # each page load gets its own replay from the start
                messages.append(json.dumps(doc, separators=(",", ":")))
                for frame in watch.frames:
                    expected[frame.name] = expected.get(frame.name, 0) + 1
        else:
            for frame in script.norman:
                if frame.name != DISCONNECTED:
                    expected[frame.name] = expected.get(frame.name, 0) + 1
        info = {
            "dialect": script.dialect,
            "endpoint": script.header.endpoint,
            "scope": script.header.scope,
            "recording": self.recording.name,
            "messages": messages,
            "expected": expected,
            "auth": self.options.token is not None,
            "speed": self.options.speed,
            "loop": self.options.loop,
        }
        text = (
            json.dumps(info, separators=(",", ":"))
            .replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
        )
        page = resources.files("rancherlab").joinpath("static/replay.html").read_text(encoding="utf-8")
        return page.replace(_INFO_MARK, text).encode()

    # --- REST: the lists a client takes before it watches ----------------------------------------
    def _rest(self, path: str, query: dict[str, list[str]], base_url: str) -> Response:
        script = self.script
        assert self._timeline is not None
        if path in ("/v3/settings/server-version", "/v1/management.cattle.io.settings/server-version"):
            return http_response(
                200,
                _json(
                    {
                        "id": "server-version",
                        "type": "setting",
                        "name": "server-version",
                        "value": script.server_version or "",
                    }
                ),
            )
        if path in self._schema_paths():
            return http_response(200, _json(self._schemas(base_url + path)))
        state, revision = self._timeline.at(self.position())
        if script.dialect == "steve":
            prefix = script.path[: -len("/v1/subscribe")]
            if not path.startswith(prefix + "/v1/"):
                return _not_found(script, "not found")
            parts = path[len(prefix) + len("/v1/") :].split("/")
            schema = script.lookup(parts[0])
            if schema is None or len(parts) > 3:
                return http_response(404, _json(_steve_error(f"schema {parts[0]} not found")))
            url = f"{base_url}{prefix}/v1/{parts[0]}"
            if len(parts) == 3 or (len(parts) == 2 and (schema, parts[1]) in state):
                obj = state.get((schema, "/".join(parts[1:])))
                if obj is None:
                    return http_response(404, _json(_steve_error(f'{parts[0]} "{"/".join(parts[1:])}" not found')))
                return http_response(200, _json(obj))
            namespace = parts[1] if len(parts) == 2 else None
            items = [
                o
                for (typ, _), o in sorted(state.items())
                if typ == schema and (namespace is None or _metadata_namespace(o) == namespace)
            ]
            body: dict[str, Any] = {
                "type": "collection",
                "links": {"self": url + (f"/{namespace}" if namespace else "")},
                "createTypes": {schema: url},
                "actions": {},
                "resourceType": schema,
            }
            if revision:
                body["revision"] = revision
            if items:
                body["count"] = len(items)
                body["data"] = items  # an empty Steve list has no data key at all
            return http_response(200, _json(body))
        scope = script.path[: -len("/subscribe")]
        rest = path[len(scope) + 1 :] if path.startswith(scope + "/") else ""
        plural, _, wanted_id = rest.partition("/")
        schema = script.lookup(plural) if plural else None
        if schema is None or "/" in wanted_id:
            return _not_found(script, "not found")
        matching = [
            o
            for (_, oid), o in sorted(state.items(), key=lambda kv: kv[0][1])
            if schema in (o.get("type"), o.get("baseType"))
        ]
        if wanted_id:
            for obj in matching:
                if obj.get("id") == wanted_id:
                    return http_response(200, _json(obj))
            return _not_found(script, f"{wanted_id} not found")
        filters = {k: v[0] for k, v in query.items() if k not in _NORMAN_CONTROL and v}
        items = [o for o in matching if all(_field_eq(o.get(k), v) for k, v in filters.items())]
        url = f"{base_url}{scope}/{plural}"
        return http_response(
            200,
            _json(
                {
                    "type": "collection",
                    "links": {"self": url},
                    "createTypes": {schema: url},
                    "actions": {},
                    "pagination": {"limit": max(1000, len(items)), "total": len(items)},
                    "resourceType": schema,
                    "data": items,
                }
            ),
        )

    def _schema_paths(self) -> set[str]:
        """Where a client looks for the types a scope offers: the recorded types are all this replay has."""
        path = self.script.path
        if self.script.dialect == "steve":
            return {path[: -len("/subscribe")] + "/schemas"}
        scope = path[: -len("/subscribe")]
        version = re.sub(r"^/v3/(cluster|project)s?/.*$", r"/v3/\1", scope)
        return {scope + "/schemas", version + "/schemas"}

    def _schemas(self, url: str) -> dict[str, Any]:
        names: dict[str, str] = {}
        for name, schema in sorted(self.script.names.items()):
            if name != schema:
                names.setdefault(schema, name)  # a plural the recording used for it
        data = [
            {
                "id": schema,
                "type": "schema",
                "links": {"self": f"{url}/{schema}"},
                "pluralName": names.get(schema, schema + "s"),
                "collectionMethods": ["GET"],
                "resourceMethods": ["GET"],
            }
            for schema in sorted(self.script.known_types())
        ]
        return {"type": "collection", "resourceType": "schema", "links": {"self": url}, "data": data}

    # --- upgraded sockets ---------------------------------------------------------------------
    async def _handler(self, connection: ServerConnection) -> None:
        route = self._routes.pop(connection, _Route())
        script = self.script
        outbox = Outbox(connection)
        tasks: list[asyncio.Task[Any]] = []
        if script.dialect == "norman":
            tasks.append(every(self.options.norman_ping, lambda: outbox.push(norman.PING)))
            tasks.append(asyncio.get_running_loop().create_task(self._norman(outbox, route.wanted)))
            session: _SteveSession | None = None
        else:
            version = script.server_version
            tasks.append(every(self.options.steve_ping, lambda: outbox.push(steve.ping(version))))
            session = _SteveSession(self, outbox)
        try:
            async for message in connection:
                if session is not None:
                    session.receive(message)
                    await outbox.settle()  # a client that never reads stops being read
                # Norman's reader loop discards whatever the client sends.
        except ConnectionClosed:
            pass
        finally:
            if session is not None:
                session.close()
            for task in tasks:
                task.cancel()
            await outbox.close()

    async def _norman(self, outbox: Outbox, wanted: frozenset[str] | None) -> None:
        """This socket's own replay from the start: frames byte for byte at the recorded pace."""
        frames = [
            f
            for f in self.script.norman
            if wanted is None or f.type is None or f.type in wanted or f.base_type in wanted
        ]
        if not self.options.reproduce_drops:
            frames = [f for f in frames if f.name != DISCONNECTED]
        if not frames:
            return  # nothing recorded for what this socket asked (a type with snapshot objects only): pings only
        loop = asyncio.get_running_loop()
        start = loop.time()
        cycle = 0
        while True:
            base = start + cycle * self._delay(self.period)
            for frame in frames:
                await _sleep_until(base + self._delay(frame.t))
                if frame.name == DISCONNECTED:
                    outbox.abort()  # as recorded: the TCP connection goes without a close frame (1006)
                    return
                await outbox.put(frame.raw)
            if not self.options.loop:
                return  # the socket stays open, with pings
            cycle += 1
            await _sleep_until(start + cycle * self._delay(self.period))  # every pass waits out its period

    async def stream_watch(
        self, outbox: Outbox, frames: list[Frame], start: float, resume: str | None, restamp: dict[str, str] | None
    ) -> None:
        """One Steve watch's frames: its own replay from `start`, or from the replay clock after `resume`.

        A watch that matches no recorded frame (a namespace, id or selector the recording does not have) ends
        here at once and stays started and quiet; with `loop`, every pass waits out its period, so no pass
        (however many of its frames a resume skips) runs without awaiting.
        """
        if not frames:
            return
        loop = asyncio.get_running_loop()
        if resume is None:
            anchor, origin, cycle = loop.time(), start, 0
        else:
            anchor, origin = self._clock_start, 0.0
            elapsed = (loop.time() - anchor) * self.options.speed if math.isfinite(self.options.speed) else 0.0
            cycle = int(elapsed // self.period) if self.options.loop else 0
        first = True
        while True:
            base = anchor + cycle * self._delay(self.period)
            for frame in frames:
                if first and resume is not None and not revision_after(frame.revision, resume):
                    continue
                await _sleep_until(base + self._delay(max(frame.t - origin, 0.0)))
                await outbox.put(_restamp(frame.raw, restamp) if restamp is not None else frame.raw)
            if not self.options.loop:
                return
            first = False
            cycle += 1
            await _sleep_until(anchor + cycle * self._delay(self.period))


class _SteveSession:
    """One `/v1` socket: the client's watches, answered from the recorded ones."""

    def __init__(self, server: AsyncReplayServer, outbox: Outbox) -> None:
        self.server = server
        self.outbox = outbox
        self.watches: dict[str, tuple[Subscribe, asyncio.Task[None]]] = {}
        self._drop: asyncio.TimerHandle | None = None

    def receive(self, message: str | bytes) -> None:
        request = steve.client_request(message, self.watches)
        if request.action == "invalid":
            self.outbox.push(request.reply)
        elif request.action == "stop":
            _, task = self.watches.pop(request.sub.key)  # the key goes first, then exactly one stop
            task.cancel()
            self.outbox.push(steve.stop_event(request.sub.echo()))
        elif request.action == "start":
            self._start(request.sub)

    def _start(self, sub: Subscribe) -> None:
        echo = sub.echo()
        if len(self.watches) >= MAX_WATCHES:
            self.outbox.push(steve.error_event(TOO_MANY_WATCHES, echo))
            self.outbox.push(steve.stop_event(echo))
            return
        script = self.server.script
        recorded = script.watches.get(sub.key)
        if recorded is not None and recorded.started:
            frames, start, restamp = recorded.frames, recorded.start or 0.0, None
        elif (schema := script.lookup(sub.resource_type)) is not None:
            frames, start, restamp = _derived(script, schema, sub), 0.0, echo
        else:
            self.outbox.push(steve.error_event(f"failed to find schema {sub.resource_type}", echo))
            self.outbox.push(steve.stop_event(echo))
            return
        self.outbox.push(steve.start_event(echo))
        resume = None if sub.resource_version in _NO_REVISION else sub.resource_version
        if restamp is not None and resume is None and frames:
            start = frames[0].t
        task = asyncio.get_running_loop().create_task(
            self.server.stream_watch(self.outbox, frames, start, resume, restamp)
        )
        self.watches[sub.key] = (sub, task)
        self._arm_drop(start)

    def _arm_drop(self, start: float) -> None:
        """With reproduce_drops, the first recorded drop after this socket's first watch closes it (1006)."""
        server = self.server
        if self._drop is not None or not server.options.reproduce_drops:
            return
        later = [t for t in server.script.drops if t >= start]
        if later:
            self._drop = asyncio.get_running_loop().call_later(server._delay(later[0] - start), self.outbox.abort)

    def close(self) -> None:
        if self._drop is not None:
            self._drop.cancel()
        for _, task in self.watches.values():
            task.cancel()
        self.watches.clear()


def _derived(script: Script, schema: str, sub: Subscribe) -> list[Frame]:
    """Frames for an unrecorded key of a recorded type: a recorded all-objects watch, narrowed like Rancher would.

    Namespace and id narrow it; selectors and notification mode cannot be worked out from the frames, so
    such a watch starts and stays quiet.
    """
    if sub.selector or sub.mode:
        return []
    broad: RecordedWatch | None = next(
        (
            w
            for w in script.watches.values()
            if w.schema == schema
            and w.started
            and echo_key(w.fields) == echo_key({"resourceType": w.fields.get("resourceType")})
        ),
        None,
    )
    if broad is None:
        return []
    out = []
    for frame in broad.frames:
        if sub.namespace and frame.namespace != sub.namespace:
            continue
        if sub.id and frame.id not in (sub.id, f"{sub.namespace}/{sub.id}"):
            continue
        out.append(frame)
    return out


def _restamp(raw: str, echo: dict[str, str]) -> str:
    """A recorded message with this subscription's key fields; `data` (always last) stays byte for byte."""
    cut = raw.find(',"data":')  # `,"` cannot occur inside a JSON string, so this is the top-level key
    if cut < 0:
        return raw
    head = json.loads(raw[:cut] + "}")
    fields = steve.encode_event(str(head.get("name", "")), revision=head.get("revision"), echo=echo)
    return fields[: -len("}\n")] + raw[cut:]


async def _sleep_until(when: float) -> None:
    delay = when - asyncio.get_running_loop().time()
    await asyncio.sleep(max(0, delay))


def _not_found(script: Script, message: str) -> Response:
    if script.dialect == "steve":
        return http_response(404, _json(_steve_error(message)))
    return http_response(
        404, _json({"baseType": "error", "code": "NotFound", "message": message, "status": 404, "type": "error"})
    )


def _steve_error(message: str) -> dict[str, Any]:
    return {"type": "error", "links": {}, "code": "NotFound", "message": message, "status": 404}


def _metadata_namespace(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata")
    return meta.get("namespace") if isinstance(meta, dict) else None


def _field_eq(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return value is not None and str(value) == wanted


def _json(body: Any) -> bytes:
    return dumps(body) + b"\n"
