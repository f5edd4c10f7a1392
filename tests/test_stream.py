"""The live stream against the simulator over real loopback sockets: scopes, credential sources, errors, TLS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme

from rancherlab._version import __version__
from rancherlab.cli import exit_code
from rancherlab.credentials import Credentials, InsecureTLSWarning
from rancherlab.errors import (
    AuthenticationError,
    ClusterNotFound,
    ConnectGaveUpError,
    CredentialsError,
    PermissionDeniedError,
    RancherlabError,
    TLSError,
    UnknownTypeError,
    UpgradeRefusedError,
)
from rancherlab.protocol import auth, norman
from rancherlab.protocol.event import CONNECTED, Event
from rancherlab.rest import status_error
from rancherlab.simulator import Simulator
from rancherlab.stream import NORMAN_LIVENESS, STEVE_LIVENESS, Stream, StreamOptions, subscribe

from ._stream_support import FAST, SECRET, SIM_FAST, TOKEN, collect, stream_for, truth

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=3, rate=0, token=TOKEN, **SIM_FAST) as s:
        yield s


def _first_ping(events: list[Event]) -> bool:
    return any(e.is_ping for e in events)


def _scopes(sim: Simulator) -> list[tuple[str, tuple[str, ...]]]:
    downstream = next(c for c in sim.world.clusters() if c != "local")
    project = sim.world.projects(downstream)[0]
    return [
        ("global", ("cluster", "node", "project")),
        (f"cluster:{downstream}", ("namespace",)),
        (f"project:{project}", ("pod", "deployment", "workload")),
        ("steve", ("pod", "management.cattle.io.cluster")),
        (f"steve:{downstream}", ("pods", "namespace")),
    ]


def _cli2(tmp_path: Path, url: str, token: str) -> Path:
    path = tmp_path / "cli2.json"
    path.write_text(
        json.dumps({"Servers": {"lab": {"url": url + "/v3", "tokenKey": token, "project": ""}}, "CurrentServer": "lab"})
    )
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize("source", ["arguments", "environment", "cli2.json"])
def test_every_scope_from_every_credential_source(sim: Simulator, tmp_path: Path, source: str) -> None:
    schemes = {"arguments": Credentials.api_key(*TOKEN.split(":")), "environment": None, "cli2.json": None}
    for scope, types in _scopes(sim):
        kwargs: dict[str, Any] = {"types": types, "options": FAST}
        if source == "arguments":
            stream = Stream(sim.url, scope, credentials=schemes[source], env={}, cli_config=False, **kwargs)
        elif source == "environment":
            env = {"RANCHER_URL": sim.url, "RANCHER_TOKEN_KEY": TOKEN}
            stream = Stream(
                None, scope, env=env, cli_config=_cli2(tmp_path, "http://127.0.0.1:1", "token-other:x"), **kwargs
            )
        else:
            stream = Stream(None, scope, env={}, cli_config=_cli2(tmp_path, sim.url, TOKEN), **kwargs)
        assert stream.server.source.split(" ")[0] == source
        events = collect(stream, _first_ping, timeout=8)
        assert events[0].kind == "marker" and events[0].name == CONNECTED
        assert events[0].info["attempts"] == 1
        snap = {(e.type, e.id) for e in events if e.kind == "snapshot"}
        want = truth(sim, scope, types=types)
        assert snap == set(want), scope
        assert all(e.seq == i + 1 for i, e in enumerate(events))
        if stream.dialect == "steve":
            sent = [e for e in events if e.kind == "sent"]
            assert [e.type for e in sent] == list(types)
            assert all(e.revision == str(sim.world.revision) for e in sent)
            assert any(e.name == "resource.start" for e in events)
        assert _first_ping(events)


def test_cookie_credential_and_whole_devtools_url(sim: Simulator) -> None:
    port = sim.url.rsplit(":", 1)[1]
    pasted = f"ws://127.0.0.1:{port}/v3/subscribe?resourceTypes=cluster&sockId=7"
    stream = Stream(pasted, None, credentials=Credentials.cookie(TOKEN), env={}, cli_config=False, options=FAST)
    assert str(stream.scope) == "global" and stream.types == ("cluster",)
    assert "sockId" not in stream.endpoint
    events = collect(stream, _first_ping)
    assert {e.type for e in events if e.kind == "snapshot"} == {"cluster"}


def test_subscribe_async_generator(sim: Simulator) -> None:
    async def run() -> list[Event]:
        out = []
        async for event in subscribe(
            sim.url, "steve", types=["pod"], credentials=TOKEN, env={}, cli_config=False, options=FAST, liveness=2.0
        ):
            out.append(event)
            if event.name == "resource.start":
                break
        return out

    events = asyncio.run(run())
    assert events[-1].name == "resource.start"


# --- final errors: attempted once, typed, helpful, never the secret ---------------------------------------


def _fail(stream: Stream, timeout: float = 10) -> RancherlabError:
    with pytest.raises(RancherlabError) as info:
        collect(stream, lambda ev: False, timeout=timeout)
    return info.value


def _client_log(caplog: pytest.LogCaptureFixture) -> str:
    """Every log line but the simulator's own (a server logs what it receives; that is not the client's doing)."""
    return "\n".join(
        f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("rancherlab.simulator")
    )


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert TOKEN not in text


def test_401_teaches_and_hides_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Simulator(seed=1, rate=0, **SIM_FAST) as other:  # a server that does not know our token
        stream = stream_for(other, "global", credentials=TOKEN)
        error = _fail(stream)
    assert isinstance(error, AuthenticationError) and exit_code(error) == 3
    assert stream.connection_attempts == 1
    assert "token-xxxxx:<secret>" in str(error) and "Account & API Keys" in str(error)
    _no_secret(str(error), repr(error), repr(stream), _client_log(caplog))
    assert "Authorization: Bearer ***" in _client_log(caplog)  # the handshake was logged, with the header masked


def test_unknown_norman_type_lists_valid_types(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    project = sim.world.projects("local")[0]
    stream = stream_for(sim, f"project:{project}", types=["pods"], credentials=TOKEN)
    error = _fail(stream)
    assert isinstance(error, UnknownTypeError) and exit_code(error) == 4
    assert stream.connection_attempts == 1
    assert "pod" in error.valid and "deployment" in error.valid
    assert "camelCase" in str(error) and "pod" in str(error)
    _no_secret(str(error), _client_log(caplog))


def test_unknown_norman_cluster(sim: Simulator) -> None:
    stream = stream_for(sim, "cluster:c-nope1", types=["namespace"])
    error = _fail(stream)
    assert isinstance(error, ClusterNotFound) and error.cluster == "c-nope1"
    assert stream.connection_attempts == 2  # upgrade then immediate close, twice, then REST says why
    assert "local" in str(error)


@pytest.mark.parametrize("snapshot", [True, False])
def test_unknown_steve_type(sim: Simulator, snapshot: bool) -> None:
    stream = stream_for(sim, "steve", types=["nosuchthing"], options=_with(FAST, snapshot=snapshot))
    error = _fail(stream)
    assert isinstance(error, UnknownTypeError)
    assert stream.connection_attempts == 1
    assert "apps.deployment" in error.valid
    assert "nosuchthing" in str(error)


def _with(options: StreamOptions, **changes: Any) -> StreamOptions:
    return replace(options, **changes)


def test_unknown_steve_cluster(sim: Simulator) -> None:
    stream = stream_for(sim, "steve:c-nope2", types=["pod"], options=_with(FAST, snapshot=False))
    error = _fail(stream)
    assert isinstance(error, ClusterNotFound)
    assert stream.connection_attempts == 1


def test_origin_403_explains() -> None:
    error = status_error(403, auth.ORIGIN_NOT_ALLOWED_BODY, what="subscribing")
    assert isinstance(error, PermissionDeniedError) and exit_code(error) == 3
    assert "Origin" in str(error)


def test_missing_credential_is_refused_before_connecting() -> None:
    with pytest.raises(CredentialsError, match="Account & API Keys"):
        Stream("http://127.0.0.1:1", "global", env={}, cli_config=False)


# --- things that answer but are not Rancher ----------------------------------------------------------------


class _HTTPServer:
    """A loopback HTTP server answering every request with one fixed status (a proxy that does not upgrade)."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.requests += 1
                body = b"<html>proxy page</html>"
                conn.sendall(
                    f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


def test_proxy_answering_200_is_final() -> None:
    server = _HTTPServer(200)
    try:
        stream = Stream(server.url, "global", credentials=TOKEN, env={}, cli_config=False, options=FAST)
        error = _fail(stream)
    finally:
        server.close()
    assert isinstance(error, UpgradeRefusedError)
    assert "HTTP 200 instead of 101" in str(error) and "proxy" in str(error)
    assert stream.connection_attempts == 1


def test_5xx_and_refused_connections_are_retried_then_given_up() -> None:
    server = _HTTPServer(503)
    try:
        stream = Stream(
            server.url, "global", credentials=TOKEN, env={}, cli_config=False, options=_with(FAST, give_up_after=3)
        )
        error = _fail(stream)
    finally:
        server.close()
    assert isinstance(error, ConnectGaveUpError) and exit_code(error) == 6
    assert stream.connection_attempts == 3 and "HTTP 503" in str(error)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    stream = Stream(
        f"http://127.0.0.1:{port}",
        "global",
        credentials=TOKEN,
        env={},
        cli_config=False,
        options=_with(FAST, give_up_after=2),
    )
    assert isinstance(_fail(stream), ConnectGaveUpError)
    assert stream.connection_attempts == 2


# --- TLS ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with Simulator(seed=2, rate=0, token=TOKEN, certfile=str(certfile), keyfile=str(keyfile), **SIM_FAST) as s:
        yield s, ca.cert_pem.bytes().decode()


def test_tls_without_the_ca_fails_with_advice(tls_sim: tuple[Simulator, str]) -> None:
    sim, _ = tls_sim
    assert sim.url.startswith("https://")
    stream = stream_for(sim, "global", types=["cluster"])
    error = _fail(stream)
    assert isinstance(error, TLSError) and exit_code(error) == 5
    assert "--cacert" in str(error) and "certificate" in str(error)
    assert stream.connection_attempts == 1


def test_tls_with_the_ca_works(tls_sim: tuple[Simulator, str], tmp_path: Path) -> None:
    sim, pem = tls_sim
    for cacert in (pem, str(_write(tmp_path / "ca.pem", pem))):
        stream = stream_for(sim, "steve", types=["pod"], cacert=cacert)
        events = collect(stream, _first_ping)
        assert events[0].name == CONNECTED and events[0].info["endpoint"].startswith("wss://")
        assert any(e.kind == "snapshot" for e in events)


def test_tls_insecure_warns_and_works(tls_sim: tuple[Simulator, str]) -> None:
    sim, _ = tls_sim
    stream = stream_for(sim, "global", types=["cluster"], insecure=True)
    with pytest.warns(InsecureTLSWarning):
        events = collect(stream, _first_ping)
    assert _first_ping(events)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_tls_error_on_the_socket_itself(tls_sim: tuple[Simulator, str]) -> None:
    sim, _ = tls_sim
    stream = stream_for(sim, "global", types=["cluster"], options=_with(FAST, snapshot=False, resync=False))
    error = _fail(stream)
    assert isinstance(error, TLSError) and stream.connection_attempts == 1
    assert "--cacert" in str(error)


def test_environment_proxy_is_not_used_for_loopback(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    events = collect(stream_for(sim, "steve", types=["pod"]), _first_ping)
    assert _first_ping(events) and any(e.kind == "snapshot" for e in events)


def test_refused_watch_ends_with_a_marker_and_the_others_go_on() -> None:
    """The simulator's RBAC (`forbid`) refuses to watch secrets, as Steve does: `resource.error` then `resource.stop`."""
    from rancherlab.protocol.event import WATCH_STOPPED

    with Simulator(seed=4, rate=0, token=TOKEN, forbid=("secret",), **SIM_FAST) as forbidding:
        stream = stream_for(forbidding, "steve", types=["secret", "pod"])
        events = collect(stream, lambda ev: sum(e.is_ping for e in ev) >= 4, timeout=10)
    stopped = [e for e in events if e.kind == "marker" and e.name == WATCH_STOPPED]
    assert len(stopped) == 1 and stopped[0].watch == {"resourceType": "secret"}
    assert "PermissionDenied" in stopped[0].info["error"] and "can not list" in stopped[0].info["error"]
    assert any(e.name == "resource.start" and e.type == "pod" for e in events)
    assert [e.type for e in events if e.kind == "sent"] == ["secret", "pod"]  # the refused watch is not retried
    after = [e for e in events if e.seq > stopped[0].seq]
    assert sum(e.is_ping for e in after) >= 3 and events[-1].conn == 1  # the socket and the pod watch go on


def test_every_watch_refused_is_final() -> None:
    with Simulator(seed=4, rate=0, token=TOKEN, forbid=("secret",), **SIM_FAST) as forbidding:
        error = _fail(stream_for(forbidding, "steve", types=["secret"]))
    assert isinstance(error, PermissionDeniedError) and "every watch" in str(error)


# --- the secret in no final error ---------------------------------------------------------------------------


def _unreachable_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connections are refused


@pytest.mark.parametrize(
    "case", ["tls", "proxy-200", "gave-up", "cluster-not-found", "unknown-type", "401", "every-watch-refused"]
)
def test_no_final_error_shows_the_secret(request: pytest.FixtureRequest, sim: Simulator, case: str) -> None:
    """Whatever ends a stream, its message, repr and traceback hold no form of the credential."""
    kinds = {
        "tls": TLSError,
        "proxy-200": UpgradeRefusedError,
        "gave-up": ConnectGaveUpError,
        "cluster-not-found": ClusterNotFound,
        "unknown-type": UnknownTypeError,
        "401": AuthenticationError,
        "every-watch-refused": PermissionDeniedError,
    }
    with contextlib.ExitStack() as stack:
        if case == "tls":
            stream = stream_for(request.getfixturevalue("tls_sim")[0], "global", types=["cluster"])
        elif case == "proxy-200":
            proxy = _HTTPServer(200)
            stack.callback(proxy.close)
            stream = Stream(proxy.url, "global", credentials=TOKEN, env={}, cli_config=False, options=FAST)
        elif case == "gave-up":
            stream = Stream(
                _unreachable_url(),
                "global",
                credentials=TOKEN,
                env={},
                cli_config=False,
                options=_with(FAST, give_up_after=2),
            )
        elif case == "cluster-not-found":
            stream = stream_for(sim, "steve:c-nope4", types=["pod"], options=_with(FAST, snapshot=False))
        elif case == "unknown-type":
            stream = stream_for(sim, f"project:{sim.world.projects('local')[0]}", types=["pods"])
        elif case == "401":
            stranger = stack.enter_context(Simulator(seed=1, rate=0, **SIM_FAST))  # does not know our token
            stream = stream_for(stranger, "global", credentials=TOKEN)
        else:
            forbidding = stack.enter_context(Simulator(seed=4, rate=0, token=TOKEN, forbid=("secret",), **SIM_FAST))
            stream = stream_for(forbidding, "steve", types=["secret"])
        error = _fail(stream)
    assert isinstance(error, kinds[case])
    shown = (str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error)), repr(stream))
    for form in (
        SECRET,
        TOKEN,
        base64.b64encode(TOKEN.encode()).decode(),
        base64.urlsafe_b64encode(TOKEN.encode()).decode(),
    ):
        assert not [text for text in shown if form in text], case


# --- client defaults: backoff, liveness, the upgrade request ------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_thirty_with_full_jitter() -> None:
    fixed = replace(StreamOptions(), jitter=False)
    assert [fixed.backoff(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    jittered = StreamOptions()
    for n, cap in ((0, 1.0), (3, 8.0), (20, 30.0)):
        delays = [jittered.backoff(n) for _ in range(2000)]
        assert all(0 <= d <= cap for d in delays)
        assert min(delays) < 0.05 * cap and max(delays) > 0.95 * cap  # uniform over [0, cap], not cap ± a little
        assert 0.4 * cap < sum(delays) / len(delays) < 0.6 * cap


def test_default_liveness_is_15_s_on_norman_and_35_s_on_steve() -> None:
    assert StreamOptions().liveness_for("norman") == NORMAN_LIVENESS == 15.0
    assert StreamOptions().liveness_for("steve") == STEVE_LIVENESS == 35.0
    assert StreamOptions(liveness=2.5).liveness_for("steve") == 2.5


class _Upgrades:
    """A loopback websockets server that answers 503 to the first `refuse` upgrades, then plays `plan` per connection
    ("frame": one Norman ping then a close; "silent": a close with no frame; "stay": pings until the end), and keeps
    every request's headers."""

    def __init__(self, refuse: int, plan: list[str]) -> None:
        self.refuse, self.plan = refuse, list(plan)
        self.headers: list[Any] = []

    def process_request(self, conn: Any, request: Any) -> Any:
        self.headers.append(request.headers)
        if len(self.headers) <= self.refuse:
            return conn.respond(503, "down\n")
        return None

    async def handler(self, conn: Any) -> None:
        what = self.plan.pop(0) if self.plan else "stay"
        if what == "silent":
            return
        await conn.send(norman.PING)
        while what == "stay":
            await asyncio.sleep(0.05)
            await conn.send(norman.PING)


def test_backoff_grows_while_failing_and_resets_after_a_frame() -> None:
    """Through real reconnects: 3 refusals (0.2 + 0.4 + 0.8 s), a connection with a frame then closed (next wait
    0.2 s, the schedule restarted), one closed without a frame (0.4 s), then one that stays."""
    from websockets.asyncio.server import serve

    options = _with(FAST, backoff_initial=0.2, backoff_max=5.0, jitter=False, snapshot=False, resync=False)
    upgrades = _Upgrades(refuse=3, plan=["frame", "silent", "stay"])

    async def run() -> list[Event]:
        async with serve(upgrades.handler, "127.0.0.1", 0, process_request=upgrades.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            stream = Stream(
                f"http://127.0.0.1:{port}",
                "global",
                types=["cluster"],
                credentials=TOKEN,
                env={},
                cli_config=False,
                options=options,
            )
            events: list[Event] = []
            async for event in stream:
                events.append(event)
                if event.conn == 3 and event.is_ping:
                    break
            await stream.aclose()
            return events

    events = asyncio.run(run())
    connected = [e for e in events if e.kind == "marker" and e.name == CONNECTED]
    assert [c.info["attempts"] for c in connected] == [4, 1, 2]
    assert connected[0].t >= 0.2 + 0.4 + 0.8
    assert 0.2 <= connected[1].info["gap_seconds"] < 0.2 + 0.6  # not 1.6 s: the frame reset the schedule
    assert 0.4 <= connected[2].info["gap_seconds"] < 0.4 + 0.6  # a frameless connection counts as a failure


def test_upgrade_request_says_who_it_is_and_sends_no_origin() -> None:
    """Read on the server side: `User-Agent: rancherlab/<version>` and no `Origin` (Rancher checks Origin against its
    own URL and refuses a foreign one with 403; a non-browser client simply sends none)."""
    from websockets.asyncio.server import serve

    upgrades = _Upgrades(refuse=0, plan=["stay"])

    async def run() -> None:
        async with serve(upgrades.handler, "127.0.0.1", 0, process_request=upgrades.process_request) as server:
            port = server.sockets[0].getsockname()[1]
            stream = Stream(
                f"http://127.0.0.1:{port}",
                "global",
                types=["cluster"],
                credentials=TOKEN,
                env={},
                cli_config=False,
                options=_with(FAST, snapshot=False, resync=False),
            )
            async for event in stream:
                if event.is_ping:
                    break
            await stream.aclose()

    asyncio.run(run())
    headers = upgrades.headers[0]
    assert headers["User-Agent"] == f"rancherlab/{__version__}"
    assert "Origin" not in headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"  # it is the server that sees the credential, and only it
