"""Each simulator fault as a client sees it: 1006, silence, stop, closed after the timeout, dropped, refused then back."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rancherlab.protocol import norman
from rancherlab.simulator import Simulator

from .conftest import SECRET_TOKEN

HEADERS = {"Authorization": f"Bearer {SECRET_TOKEN}"}


def ws(sim: Simulator, path: str) -> str:
    return sim.url.replace("http", "ws", 1) + path


async def closed_without_frame(conn, timeout: float = 5.0) -> float:
    """Read until the connection ends, within `timeout` (pings would keep an open one busy forever); it must end
    without a close frame (1006). Returns when."""
    start = time.monotonic()
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(conn.recv(), start + timeout - time.monotonic())
    assert info.value.rcvd is None and conn.close_code == 1006
    return time.monotonic() - start


def test_drop_now_is_1006_on_both_apis():
    with Simulator(seed=2, token=SECRET_TOKEN, rate=5, norman_ping=0.1, steve_ping=0.1) as sim:

        async def go() -> None:
            async with (
                connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as n,
                connect(ws(sim, "/v1/subscribe"), additional_headers=HEADERS) as s,
            ):
                await asyncio.wait_for(n.recv(), 5)
                await asyncio.wait_for(s.recv(), 5)
                await asyncio.get_running_loop().run_in_executor(None, sim.drop_now)
                await closed_without_frame(n)
                await closed_without_frame(s)

        asyncio.run(go())


def test_drop_every_closes_sockets_periodically():
    with Simulator(seed=2, token=SECRET_TOKEN, rate=5, norman_ping=0.1, drop_every=0.5) as sim:

        async def go() -> list[float]:
            lifetimes = []
            for _ in range(2):
                async with connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as conn:
                    lifetimes.append(await closed_without_frame(conn))
            return lifetimes

        assert all(t < 1.5 for t in asyncio.run(go()))


def test_stall_keeps_tcp_open_and_sends_nothing():
    with Simulator(seed=2, token=SECRET_TOKEN, rate=50, norman_ping=0.1, stall_after=0.3) as sim:

        async def go() -> None:
            async with connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as conn:
                start = time.monotonic()
                got_late = False
                while time.monotonic() - start < 1.2:
                    try:
                        await asyncio.wait_for(conn.recv(), 0.5)
                        got_late = time.monotonic() - start > 0.5
                    except TimeoutError:
                        break
                assert not got_late, "a stalled socket must go silent"
                assert conn.state.name == "OPEN"  # silence, not a close
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(conn.recv(), 0.5)

        asyncio.run(go())


def test_stall_method_silences_open_sockets():
    """`stall()` silences every open socket on both APIs: what was in flight drains within a bounded time, then
    nothing more arrives (no events, no pings) while the connection stays open."""
    with Simulator(seed=2, token=SECRET_TOKEN, rate=50, norman_ping=0.1, steve_ping=0.1) as sim:

        async def drained(conn) -> None:
            deadline = time.monotonic() + 2.0
            while True:  # what was written before the stall may still arrive, for at most 2 s
                assert time.monotonic() < deadline, "a stalled socket kept sending"
                try:
                    await asyncio.wait_for(conn.recv(), 0.3)
                except TimeoutError:
                    break
            with pytest.raises(TimeoutError):  # pings every 0.1 s and 50 changes a second would have shown up
                await asyncio.wait_for(conn.recv(), 0.6)
            assert conn.state.name == "OPEN"  # silence, not a close

        async def go() -> None:
            async with (
                connect(ws(sim, "/v1/subscribe"), additional_headers=HEADERS) as s,
                connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as n,
            ):
                await s.send('{"resourceType":"pod"}')
                await asyncio.wait_for(s.recv(), 5)
                await asyncio.wait_for(n.recv(), 5)
                await asyncio.get_running_loop().run_in_executor(None, sim.stall)
                await asyncio.gather(drained(s), drained(n))

        asyncio.run(go())


def small_window(port: int) -> socket.socket:
    """A connected client socket with a tiny receive buffer, so a client that stops reading backs the server up in
    about a second instead of after megabytes of loopback buffering."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def churn_until(sim: Simulator, kind: str | None, cluster: str, events: int) -> None:
    """Step the world in small bursts until `events` changes of `kind` (None: any) in `cluster` happened.

    Tests drive the churn themselves: a high `rate` in the same process starves the client of the GIL (the slow
    consumer tests took 5 and 15 s), and big bursts overflow the buffer of any reader, slow or not.
    """
    while events > 0:
        events -= sum(c.resource.cluster == cluster and kind in (None, c.resource.kind) for c in sim.step(20))


def test_slow_consumer_is_dropped_on_norman():
    """A client that stops reading falls more than 100 events behind and is dropped (1006), as norman's broadcaster
    does."""
    with Simulator(seed=2, token=SECRET_TOKEN, rate=0, norman_ping=0.5, buffer=100) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]

        async def go() -> None:
            async with connect(
                ws(sim, f"/v3/projects/{project}/subscribe"),
                sock=small_window(sim.port),
                additional_headers=HEADERS,
                max_queue=1,
                max_size=None,
            ) as conn:
                await asyncio.wait_for(conn.recv(), 5)  # joined: the replay has begun
                conn.transport.pause_reading()  # stop reading: the kernel buffers fill, then rancher's 100 do
                await asyncio.get_running_loop().run_in_executor(None, churn_until, sim, None, cluster, 4000)
                conn.transport.resume_reading()
                await closed_without_frame(conn, timeout=5)

        asyncio.run(go())


def test_slow_consumer_gets_resource_stop_on_steve():
    """A watch whose client stops reading gets one `resource.stop` once its 100 buffered events cannot be queued,
    while a client reading the same churn keeps its watch.

    """
    with Simulator(seed=2, token=SECRET_TOKEN, rate=0, steve_ping=30, buffer=100) as sim:

        async def names_until_quiet(conn) -> list[str]:
            names = []
            while "resource.stop" not in names:
                try:
                    names.append(json.loads(await asyncio.wait_for(conn.recv(), 1))["name"])
                except TimeoutError:
                    break
            return names

        async def go() -> tuple[list[str], list[str]]:
            # uncompressed, so the bytes of each event fill the window rather than a few bytes of deflate
            async with (
                connect(
                    ws(sim, "/v1/subscribe"),
                    sock=small_window(sim.port),
                    additional_headers=HEADERS,
                    max_queue=1,
                    max_size=None,
                    compression=None,
                ) as slow,
                connect(ws(sim, "/v1/subscribe"), additional_headers=HEADERS, compression=None) as reader,
            ):
                for conn in (slow, reader):
                    await conn.send('{"resourceType":"pod"}')
                    assert json.loads(await asyncio.wait_for(conn.recv(), 5))["name"] == "resource.start"
                slow.transport.pause_reading()
                churning = asyncio.get_running_loop().run_in_executor(None, churn_until, sim, "pod", "local", 1000)
                reader_names = await names_until_quiet(reader)
                await churning
                slow.transport.resume_reading()
                return await names_until_quiet(slow), reader_names

        slow, reader = asyncio.run(go())
        assert slow[-1] == "resource.stop" and slow.count("resource.stop") == 1
        assert set(slow[:-1]) <= {"resource.create", "resource.change", "resource.remove"}
        assert "resource.stop" not in reader and len(reader) > len(slow)


def test_restart_refuses_then_comes_back():
    with Simulator(seed=2, token=SECRET_TOKEN, rate=5, norman_ping=0.1) as sim:
        port = sim.port

        async def go() -> None:
            async with connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as conn:
                loop = asyncio.get_running_loop()
                restarting = loop.run_in_executor(None, sim.restart, 1.0)
                await closed_without_frame(conn)
                await asyncio.sleep(0.3)
                with pytest.raises(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                await restarting
            async with connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as conn:
                assert sim.port == port
                while await asyncio.wait_for(conn.recv(), 5) != norman.PING:
                    pass

        asyncio.run(go())
