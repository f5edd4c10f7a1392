"""The simulator on the wire, checked with a plain websockets client (not rancherlab's) against the specs."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rancherlab.protocol import auth, go_json, norman, steve
from rancherlab.simulator import Simulator
from rancherlab.simulator.world import PROJECT_ANNOTATION

from .conftest import SECRET_TOKEN, received_within

WAIT = 5.0


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=7, token=SECRET_TOKEN, rate=20, norman_ping=0.25, steve_ping=0.25) as s:
        yield s


def ws(sim: Simulator, path: str) -> str:
    return sim.url.replace("http", "ws", 1) + path


def bearer(token: str = SECRET_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def downstream(sim: Simulator) -> tuple[str, str]:
    cluster = next(c for c in sim.world.clusters() if c != "local")
    return cluster, sim.world.projects(cluster)[0]


async def recv_json(conn: ClientConnection, timeout: float = WAIT) -> tuple[str, dict[str, Any]]:
    raw = await asyncio.wait_for(conn.recv(), timeout)
    assert isinstance(raw, str), "Rancher sends text frames only"
    return raw, json.loads(raw)


async def until(conn: ClientConnection, pred: Any, timeout: float = WAIT) -> list[dict[str, Any]]:
    """Receive until a message satisfies `pred`; return every message seen (parsed)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        _, msg = await recv_json(conn, deadline - time.monotonic())
        seen.append(msg)
        if pred(msg):
            return seen


# --- authentication and refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        bearer(),
        {"Authorization": "Basic " + base64.urlsafe_b64encode(SECRET_TOKEN.encode()).decode()},
        {"Cookie": f"R_SESS={SECRET_TOKEN}"},
    ],
    ids=["bearer", "basic", "cookie"],
)
@pytest.mark.parametrize("endpoint", ["global", "cluster", "project", "steve", "steve-cluster"])
def test_every_endpoint_with_every_auth_method(sim, headers, endpoint):
    cluster, project = downstream(sim)
    path = {
        "global": "/v3/subscribe",
        "cluster": f"/v3/clusters/{cluster}/subscribe",
        "project": f"/v3/projects/{project}/subscribe",
        "steve": "/v1/subscribe",
        "steve-cluster": f"/k8s/clusters/{cluster}/v1/subscribe",
    }[endpoint]

    async def go() -> None:
        async with connect(ws(sim, path), additional_headers=headers) as conn:
            if endpoint.startswith("steve"):
                await conn.send('{"resourceType":"pods"}')
                _, msg = await recv_json(conn)
                assert msg["name"] == "resource.start"
            else:
                msgs = await until(conn, lambda m: m["name"] == "ping")
                assert msgs[-1] == {"name": "ping", "data": {}}

    asyncio.run(go())


async def refused(url: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers or {}, **kw):
            pass
    return info.value.response


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("token-wrong:nope"), {"Authorization": "Basic !!!", "Cookie": f"R_SESS={SECRET_TOKEN}"}],
    ids=["none", "wrong", "cookie-ignored-with-authorization"],
)
@pytest.mark.parametrize("path", ["/v3/subscribe", "/v1/subscribe"])
def test_401_body_is_rancher_exact(sim, headers, path):
    response = asyncio.run(refused(ws(sim, path), headers))
    assert response.status_code == 401
    assert response.body.decode() == '{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}\n'
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-API-Cattle-Auth"] == "false"


def test_browser_origin_403_comes_before_authentication(sim):
    headers = {"User-Agent": "Mozilla/5.0 (X11)", "Origin": "https://evil.example"}
    response = asyncio.run(refused(ws(sim, "/v1/subscribe"), headers, user_agent_header=None))
    assert response.status_code == 403
    assert response.body.decode() == auth.ORIGIN_NOT_ALLOWED_BODY


def test_gorilla_origin_403_for_any_client(sim):
    response = asyncio.run(refused(ws(sim, "/v3/subscribe"), {**bearer(), "Origin": "http://elsewhere:1"}))
    assert (response.status_code, response.body) == (403, b"Forbidden\n")
    ok = {**bearer(), "Origin": sim.url.upper().replace("HTTP", "http")}  # same host, other case: allowed

    async def same_origin() -> None:
        async with connect(ws(sim, "/v3/subscribe"), additional_headers=ok) as conn:
            await until(conn, lambda m: m["name"] == "ping")

    asyncio.run(same_origin())


@pytest.mark.parametrize("query", ["?resourceTypes=nosuchtype", "?resourceTypes=", "?resourceTypes=Pod"])
def test_norman_unmatched_resource_types_404_before_upgrade(sim, query):
    _, project = downstream(sim)
    response = asyncio.run(refused(ws(sim, f"/v3/projects/{project}/subscribe{query}"), bearer()))
    assert response.status_code == 404
    assert response.body.decode() == norman.NO_TYPES_BODY


def test_plain_get_on_subscribe_is_400(sim):
    response = httpx.get(sim.url + "/v3/subscribe", headers=bearer())
    assert response.status_code == 400


def test_unknown_norman_cluster_upgrades_then_drops(sim):
    async def go() -> ConnectionClosed:
        async with connect(ws(sim, "/v3/clusters/c-nope0/subscribe"), additional_headers=bearer()) as conn:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(conn.recv(), WAIT)
            return info.value

    closed = asyncio.run(go())
    assert closed.rcvd is None and closed.sent is None  # no close frame: the client sees 1006


def test_unknown_steve_cluster_is_401_with_empty_body(sim):
    response = asyncio.run(refused(ws(sim, "/k8s/clusters/c-nope0/v1/subscribe"), bearer()))
    assert (response.status_code, response.body) == (401, b"")


# --- Norman wire format -----------------------------------------------------------------------------


def test_norman_bytes_pings_and_filter(sim):
    _, project = downstream(sim)
    url = ws(sim, f"/v3/projects/{project}/subscribe?resourceTypes=pod&resourceTypes=deployment&sockId=3")

    async def go() -> tuple[list[str | bytes], list[float], Any]:
        async with connect(url, additional_headers=bearer()) as conn:
            assert conn.protocol.extensions == []  # Norman negotiates no compression
            frames, ping_times = [], []
            deadline = time.monotonic() + 1.4
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(conn.recv(), WAIT)
                frames.append(raw)
                if raw == norman.PING:
                    ping_times.append(time.monotonic())
            return frames, ping_times, conn

    frames, ping_times, _ = asyncio.run(go())
    resources = [f for f in frames if f != norman.PING]
    assert resources, "the first subscriber gets the replay of existing objects"
    for raw in resources:
        doc = json.loads(raw)
        assert list(doc) == ["name", "data"]
        assert doc["name"] in ("resource.change", "resource.remove")
        assert raw == norman.resource_frame(doc["name"], doc["data"])  # sorted keys, escaping, "\n}" exactly
        assert raw.endswith("\n}") and go_json(doc["data"]) in raw
        assert doc["data"]["type"] in ("pod", "deployment")
        assert doc["data"]["projectId"] == project
    gaps = [b - a for a, b in pairwise(ping_times)]
    assert len(ping_times) >= 4 and all(0.1 < g < 0.5 for g in gaps), gaps


def test_norman_shared_watch_replays_only_to_the_first_subscriber(sim):
    sim.step(0)
    cluster, _ = downstream(sim)
    url = ws(sim, f"/v3/clusters/{cluster}/subscribe?resourceTypes=namespace")

    async def go() -> tuple[int, int]:
        async with connect(url, additional_headers=bearer()) as first:
            await asyncio.sleep(0.1)
            async with connect(url, additional_headers=bearer()) as second:
                a = [f for f in await received_within(first, 0.3) if f != norman.PING]
                b = [f for f in await received_within(second, 0.3) if f != norman.PING]
                return len(a), len(b)

    first, second = asyncio.run(go())
    namespaces = [r for r in sim.world.resources("namespace", cluster)]
    assert first >= len(namespaces) and second < len(namespaces)


def test_norman_client_messages_are_ignored(sim):
    async def go() -> None:
        async with connect(ws(sim, "/v3/subscribe?resourceTypes=cluster"), additional_headers=bearer()) as conn:
            await conn.send('{"resourceType":"pod"}')
            await conn.send("garbage")
            await until(conn, lambda m: m["name"] == "ping")

    asyncio.run(go())


def test_norman_watch_timeout_closes_every_socket_of_that_type():
    """The timeout ends a shared watch: every socket streaming that type closes at once (1006), while a socket on
    another type, whose watch started later, stays open until its own watch times out."""
    timeout = 0.8
    with Simulator(seed=3, token=SECRET_TOKEN, rate=0, watch_timeout=timeout, norman_ping=0.1) as sim:

        async def closed_at(conn: ClientConnection) -> float:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(conn.recv(), WAIT)
            assert info.value.rcvd is None and conn.close_code == 1006
            return time.monotonic()

        async def go() -> tuple[float, list[float], float, list[str]]:
            users, clusters = (
                ws(sim, "/v3/subscribe?resourceTypes=user"),
                ws(sim, "/v3/subscribe?resourceTypes=cluster"),
            )
            start = time.monotonic()
            async with connect(users, additional_headers=bearer()) as a:
                await asyncio.sleep(0.2)
                async with connect(users, additional_headers=bearer()) as b:
                    await asyncio.sleep(0.2)
                    async with connect(clusters, additional_headers=bearer()) as other:
                        other_started = time.monotonic()
                        ends = list(await asyncio.gather(closed_at(a), closed_at(b)))
                        after = await received_within(other, 0.2)  # the other type's socket is still streaming
                        other_end = await closed_at(other)
            return start, ends, other_end - other_started, after

        start, (a_end, b_end), other_lifetime, after = asyncio.run(go())
        assert abs(a_end - b_end) < 0.15, "one watch ending closes all of its sockets together"
        assert timeout - 0.1 < a_end - start < timeout + 0.5  # from the first socket, which started the watch
        assert norman.PING in after
        assert timeout - 0.1 < other_lifetime < timeout + 0.5


# --- Steve sequences ---------------------------------------------------------------------------------


def steve_url(sim: Simulator) -> str:
    return ws(sim, "/v1/subscribe")


def test_steve_compression_and_ping_with_version(sim):
    async def go() -> None:
        async with connect(steve_url(sim), additional_headers=bearer()) as conn:
            assert [e.name for e in conn.protocol.extensions] == ["permessage-deflate"]
            raw, msg = await recv_json(conn)
            assert raw == steve.ping(sim.world.server_version)
            assert msg["data"]["version"] == sim.world.server_version

    asyncio.run(go())


def test_steve_ping_cadence_is_the_configured_interval(sim):
    """Each Steve socket has its own ping ticker, at the configured interval (Rancher: 30 s; here 0.25 s)."""

    async def go() -> list[float]:
        async with connect(steve_url(sim), additional_headers=bearer()) as conn:
            opened, times = time.monotonic(), list[float]()
            while len(times) < 5:
                raw = await asyncio.wait_for(conn.recv(), WAIT)
                if json.loads(raw)["name"] == "ping":
                    assert raw == steve.ping(sim.world.server_version)
                    times.append(time.monotonic() - opened)
            return times

    times = asyncio.run(go())
    gaps = [b - a for a, b in pairwise(times)]
    assert times[0] < 0.5 and all(0.15 < g < 0.4 for g in gaps), (times, gaps)
    assert 0.2 < sum(gaps) / len(gaps) < 0.32


def test_steve_unknown_type_errors_then_stops_without_start(sim):
    async def go() -> list[dict[str, Any]]:
        async with connect(steve_url(sim), additional_headers=bearer()) as conn:
            await conn.send('{"resourceType":"nosuchthing","namespace":"x"}')
            return await until(conn, lambda m: m["name"] == "resource.stop")

    msgs = [m for m in asyncio.run(go()) if m["name"] != "ping"]
    assert [m["name"] for m in msgs] == ["resource.error", "resource.stop"]
    assert msgs[0]["data"] == {"error": "failed to find schema nosuchthing"}
    assert msgs[0]["resourceType"] == "nosuchthing" and msgs[0]["namespace"] == "x"


def test_steve_bad_json_is_an_error_and_the_socket_stays(sim):
    async def go() -> None:
        async with connect(steve_url(sim), additional_headers=bearer()) as conn:
            await conn.send("not json")
            msgs = await until(conn, lambda m: m["name"] == "resource.error")
            assert "invalid character" in msgs[-1]["data"]["error"]
            await conn.send('{"resourceType":"Pods"}')
            msgs = await until(conn, lambda m: m["name"] == "resource.start")
            assert msgs[-1]["resourceType"] == "Pods"  # looked up in any case, echoed as sent

    asyncio.run(go())


@pytest.mark.parametrize("store", ["sql", "proxy"])
def test_steve_exact_key_stop(store: str) -> None:
    """Only a stop with the watch's exact key ends it, once; a duplicate start or a stale stop gets nothing."""
    with Simulator(seed=7, token=SECRET_TOKEN, rate=20, steve_store=store, steve_ping=0.25) as sim:
        _exact_key_stop(sim)


def _exact_key_stop(sim: Simulator) -> None:
    async def go() -> list[str]:
        async with connect(steve_url(sim), additional_headers=bearer()) as conn:
            await conn.send('{"resourceType":"pod","namespace":"default","selector":"app"}')
            await until(conn, lambda m: m["name"] == "resource.start")
            await conn.send('{"resourceType":"pod","namespace":"default","stop":true}')  # wrong key: nothing
            await conn.send('{"resourceType":"pod","namespace":"default","selector":"app"}')  # duplicate start: ignored
            await conn.send('{"resourceType":"pod","namespace":"default","selector":"app","stop":true}')
            await conn.send(
                '{"resourceType":"pod","namespace":"default","selector":"app","stop":true}'
            )  # already ended
            names = [m["name"] for m in await until(conn, lambda m: m["name"] == "resource.stop")]
            names += [json.loads(f)["name"] for f in await received_within(conn, 0.6)]
            return names

    names = [n for n in asyncio.run(go()) if n != "ping"]
    assert names.count("resource.stop") == 1 and "resource.start" not in names
    assert all(n in ("resource.create", "resource.change", "resource.remove", "resource.stop") for n in names)


@pytest.mark.parametrize("store", ["sql", "proxy"])
def test_steve_initial_replay_depends_on_the_store(store):
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_store=store, steve_ping=10) as sim:

        async def go() -> list[dict[str, Any]]:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send('{"resourceType":"pod"}')
                await until(conn, lambda m: m["name"] == "resource.start")
                return [json.loads(f) for f in await received_within(conn, 0.4)]

        msgs = asyncio.run(go())
        pods = sim.world.resources("pod", "local")
        if store == "proxy":
            assert [m["name"] for m in msgs] == ["resource.create"] * len(pods) and pods
            assert all(m["revision"] == m["data"]["metadata"]["resourceVersion"] for m in msgs)
        else:
            assert msgs == []  # the SQL cache store replays nothing


@pytest.mark.parametrize(
    "store,rv,replay", [("proxy", "0", True), ("proxy", "-1", True), ("sql", "0", False), ("sql", "-1", False)]
)
def test_steve_zero_and_minus_one_revisions_depend_on_the_store(store: str, rv: str, replay: bool) -> None:
    """The proxy store maps "0" and "-1" to no revision (a full replay of creates); the SQL store looks them up like
    any revision, misses its ring and answers "too old"."""
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_store=store, steve_ping=10) as sim:
        sim.step(10)

        async def go() -> list[dict[str, Any]]:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send(json.dumps({"resourceType": "pod", "resourceVersion": rv}))
                await until(conn, lambda m: m["name"] == "resource.start")
                return [json.loads(f) for f in await received_within(conn, 0.4)]

        msgs = asyncio.run(go())
        pods = {
            f"{ns}/{name}": o["metadata"]["resourceVersion"]
            for (kind, cluster, ns, name), o in sim.ground_truth().items()
            if (kind, cluster) == ("pod", "local")
        }
        if replay:
            assert pods and [m["name"] for m in msgs] == ["resource.create"] * len(pods)
            assert {m["data"]["id"]: m["revision"] for m in msgs} == pods
        else:
            assert [m["name"] for m in msgs] == ["resource.error", "resource.stop"]
            assert msgs[0]["data"]["error"] == "resourceversion too old"


@pytest.mark.parametrize(
    "store,text",
    [
        ("sql", "resourceversion too old"),
        ("proxy", "event watch error: too old resource version: 1 ("),
    ],
)
def test_steve_too_old(store, text):
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_store=store, steve_retain=5, steve_ping=10) as sim:
        sim.step(60)

        async def go() -> list[dict[str, Any]]:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send('{"resourceType":"pod","resourceVersion":"1"}')
                return await until(conn, lambda m: m["name"] == "resource.stop")

        msgs = asyncio.run(go())
        assert [m["name"] for m in msgs] == ["resource.start", "resource.error", "resource.stop"]
        assert msgs[1]["data"]["error"].startswith(text)


@pytest.mark.parametrize("store", ["sql", "proxy"])
def test_steve_resume_from_a_retained_revision_replays_exactly_the_changes_after_it(store):
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_store=store, steve_retain=1000, steve_ping=10) as sim:
        sim.step(5)
        start_rev = sim.world.revision
        sim.step(40)
        expected = [
            str(c.revision)
            for c in sim.history()
            if c.revision > start_rev and c.resource.kind == "pod" and c.resource.cluster == "local"
        ]

        async def go() -> list[dict[str, Any]]:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send(json.dumps({"resourceType": "pods", "resourceVersion": str(start_rev)}))
                await until(conn, lambda m: m["name"] == "resource.start")
                return [json.loads(f) for f in await received_within(conn, 0.4)]

        msgs = asyncio.run(go())
        assert expected and [m["revision"] for m in msgs] == expected


def test_steve_notification_mode_debounces():
    """The first change is notified at once; each later burst gives one trailing notification, a debounce window
    after the burst began, carrying the latest revision of that type's changes in the window."""
    debounce = 0.3
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_ping=10) as sim:

        def pod_revisions(after: int) -> list[str]:
            return [
                str(c.revision)
                for c in sim.history()
                if c.revision > after and (c.resource.kind, c.resource.cluster) == ("pod", "local")
            ]

        def burst() -> tuple[float, list[str]]:
            """Step until at least two local pod changes happened; return when it started and their revisions."""
            before, at = sim.world.revision, time.monotonic()
            while len(pod_revisions(before)) < 2:
                sim.step(5)
            return at, pod_revisions(before)

        async def go() -> list[tuple[float, list[str], list[tuple[float, dict[str, Any]]]]]:
            loop = asyncio.get_running_loop()
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send(
                    json.dumps({"resourceType": "pod", "mode": "resource.changes", "debounceMs": int(debounce * 1000)})
                )
                await until(conn, lambda m: m["name"] == "resource.start")
                bursts = []
                for _ in range(2):
                    at, revisions = await loop.run_in_executor(None, burst)
                    got, end = [], time.monotonic() + debounce + 0.4
                    while (left := end - time.monotonic()) > 0:
                        try:
                            raw = await asyncio.wait_for(conn.recv(), left)
                            got.append((time.monotonic() - at, json.loads(raw)))
                        except TimeoutError:
                            break
                    bursts.append((at, revisions, got))
                return bursts

        (_, first_revs, first), (_, second_revs, second) = asyncio.run(go())
        for _, m in first + second:
            assert m["name"] == "resource.changes" and m["mode"] == "resource.changes" and m["resourceType"] == "pod"
            assert m["data"] == {"type": "subscribe", "links": {}}
        # first burst: the first change at once, then one trailing notification with the window's latest revision
        assert [m["revision"] for _, m in first] == [first_revs[0], first_revs[-1]]
        assert first[0][0] < 0.2 and debounce - 0.05 < first[1][0] < debounce + 0.3
        # a later burst: nothing at once, one trailing notification, the latest revision again
        assert [m["revision"] for _, m in second] == [second_revs[-1]]
        assert debounce - 0.05 < second[0][0] < debounce + 0.3


def test_steve_proxy_watch_expiry_stops_and_keeps_the_socket():
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_store="proxy", watch_timeout=0.4, steve_ping=0.2) as sim:

        async def go() -> None:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send(json.dumps({"resourceType": "namespace", "resourceVersion": str(sim.world.revision)}))
                msgs = await until(conn, lambda m: m["name"] == "resource.stop", timeout=3)
                assert msgs[0]["name"] in ("resource.start", "ping")
                await until(conn, lambda m: m["name"] == "ping")  # still open

        asyncio.run(go())


def test_forbidden_types_are_refused_like_rancher_rbac():
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_ping=10, forbid=("secret", "namespacedSecret")) as sim:
        _, project = downstream(sim)
        response = asyncio.run(
            refused(ws(sim, f"/v3/projects/{project}/subscribe?resourceTypes=namespacedSecret"), bearer())
        )
        assert response.status_code == 404

        async def go() -> list[dict[str, Any]]:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send('{"resourceType":"secrets"}')
                return await until(conn, lambda m: m["name"] == "resource.stop")

        msgs = asyncio.run(go())
        assert [m["name"] for m in msgs] == ["resource.error", "resource.stop"]
        assert msgs[0]["data"]["error"] == "PermissionDenied 403: can not list secrets"


def test_steve_count_resource_sends_the_whole_map_then_changed_types_only():
    with Simulator(seed=5, token=SECRET_TOKEN, rate=0, steve_ping=10, count_interval=0.3) as sim:
        pods = sim.world.resources("pod", "local")  # rate=0: the world changes only when stepped below

        async def go() -> list[dict[str, Any]]:
            async with connect(steve_url(sim), additional_headers=bearer()) as conn:
                await conn.send('{"resourceType":"count"}')
                first = await until(conn, lambda m: m["name"] == "resource.change")
                await asyncio.get_running_loop().run_in_executor(None, sim.step, 3)
                later = await until(conn, lambda m: m["name"] == "resource.change")
                return [first[0], first[-1], later[-1]]

        start, full, update = asyncio.run(go())
        assert start["name"] == "resource.start" and start["resourceType"] == "count"
        assert full["data"]["id"] == "count" and full["data"]["type"] == "count"
        summary = full["data"]["counts"]["pod"]["summary"]
        assert summary["count"] == len(pods) and sum(summary["states"].values()) == len(pods)
        assert set(update["data"]["counts"]) < set(full["data"]["counts"])  # partial: only what changed


# --- REST list + socket events == a fresh list == the ground truth -------------------------------------

REMOVEDISH = ("removed", "purging", "purged")  # the dashboard drops a Norman object whose change carries one


async def churn(sim: Simulator, steps: int) -> None:
    """Step the world from another thread while the caller's loop keeps reading, so events race the churn."""

    def run() -> None:
        for _ in range(steps):
            sim.step(1)
            time.sleep(0.001)

    await asyncio.get_running_loop().run_in_executor(None, run)


async def quiet_resources(conn: ClientConnection, quiet: float = 0.4, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every non-ping message until none has come for `quiet` seconds (pings keep arriving: they do not count)."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        assert time.monotonic() < deadline, "the stream never went quiet"
        try:
            _, msg = await recv_json(conn, quiet)
        except TimeoutError:
            break
        if msg["name"] != "ping":
            out.append(msg)
            last = time.monotonic()
    return out


def _steve_apply(state: dict[str, dict[str, Any]], msgs: list[dict[str, Any]]) -> None:
    for m in msgs:
        assert m["name"] in ("resource.create", "resource.change", "resource.remove"), m
        if m["name"] == "resource.remove":
            state.pop(m["data"]["id"], None)
        else:
            state[m["data"]["id"]] = m["data"]


def _norman_apply(state: dict[str, dict[str, Any]], msgs: list[dict[str, Any]]) -> None:
    for m in msgs:
        assert m["name"] in ("resource.change", "resource.remove"), m
        if m["name"] == "resource.remove" or m["data"].get("state") in REMOVEDISH:
            state.pop(m["data"]["id"], None)
        else:
            state[m["data"]["id"]] = m["data"]


@pytest.mark.parametrize("flavour", ["sql", "proxy", "norman"])
def test_rest_list_then_socket_events_converge_on_the_ground_truth(flavour: str) -> None:
    """The robust client pattern, over real HTTP and WebSocket connections while the world churns: what a client
    builds from a list plus the events after it is exactly a fresh list, and exactly the simulator's objects."""
    store = "proxy" if flavour == "proxy" else "sql"
    with Simulator(
        seed=9, token=SECRET_TOKEN, rate=0, steve_store=store, norman_ping=0.2, steve_ping=0.2, buffer=100_000
    ) as sim:
        sim.step(20)
        cluster, project = downstream(sim) if flavour == "norman" else ("local", "")
        list_url = sim.url + (f"/v3/project/{project}/pods" if flavour == "norman" else "/v1/pods")

        def listed() -> tuple[str | None, dict[str, dict[str, Any]]]:
            body = httpx.get(list_url, headers=bearer(), timeout=WAIT).raise_for_status().json()
            return body.get("revision"), {o["id"]: o for o in body.get("data", [])}

        async def go() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
            loop = asyncio.get_running_loop()
            revision, state = await loop.run_in_executor(None, listed)
            if flavour == "norman":
                url = ws(sim, f"/v3/projects/{project}/subscribe?resourceTypes=pod")
                async with connect(url, additional_headers=bearer()) as conn:
                    await recv_json(conn)  # replay or ping: the socket has joined the watch, so no change is missed
                    await churn(sim, 400)
                    msgs = await quiet_resources(conn)
                _norman_apply(state, msgs)
                return state, msgs
            assert revision is not None and int(revision) == sim.world.revision
            await churn(sim, 60)  # changes between the list and the watch come back from the revision
            gap = sim.world.revision
            async with connect(ws(sim, "/v1/subscribe"), additional_headers=bearer()) as conn:
                await conn.send(json.dumps({"resourceType": "pod", "resourceVersion": revision}))
                await until(conn, lambda m: m["name"] == "resource.start")
                await churn(sim, 340)
                msgs = await quiet_resources(conn)
            assert any(int(m["revision"]) <= gap for m in msgs), "nothing changed between the list and the watch"
            _steve_apply(state, msgs)
            return state, msgs

        state, msgs = asyncio.run(go())
        names = {m["name"] for m in msgs}
        assert "resource.remove" in names and "resource.change" in names, names  # the churn reached this list
        _, fresh = listed()
        truth = {k: o for k, o in sim.ground_truth().items() if k[0] == "pod" and k[1] == cluster}
        if flavour == "norman":
            annotations = {
                k[3]: o["metadata"].get("annotations") or {}
                for k, o in sim.ground_truth().items()
                if k[:2] == ("namespace", cluster)
            }
            truth = {
                k: o for k, o in truth.items() if annotations.get(k[2] or "", {}).get(PROJECT_ANNOTATION) == project
            }
            assert sorted(state) == sorted(fresh) == sorted(f"{ns}:{name}" for _, _, ns, name in truth)
        else:
            assert sorted(state) == sorted(fresh) == sorted(f"{ns}/{name}" for _, _, ns, name in truth)
            versions = {i: o["metadata"]["resourceVersion"] for i, o in state.items()}
            assert versions == {i: o["metadata"]["resourceVersion"] for i, o in fresh.items()}
            assert versions == {
                f"{ns}/{name}": o["metadata"]["resourceVersion"] for (_, _, ns, name), o in truth.items()
            }


def test_rate_changes_while_running_and_zero_pauses_the_churn() -> None:
    """`config.rate` is read on every tick: 0 pauses the world (it used to divide by zero and kill the churn task),
    and a rate set later resumes it without a catch-up burst for the paused time."""
    with Simulator(seed=4, token=SECRET_TOKEN, rate=0, steve_ping=10) as sim:
        start = sim.world.revision
        time.sleep(0.3)
        assert sim.world.revision == start
        sim.config.rate = 40
        time.sleep(0.5)
        resumed = len(sim.history()) - len([c for c in sim.history() if c.revision <= start])
        assert 5 <= resumed <= 100, resumed  # about 20 steps, not one burst for everything since the start
        sim.config.rate = 0
        time.sleep(0.1)
        paused = sim.world.revision
        time.sleep(0.3)
        assert sim.world.revision == paused
        assert sim.step(1)  # stepping by hand still works
