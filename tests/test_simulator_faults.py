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
    """Read until the connection ends; it must end without a close frame (1006). Returns when."""
    start = time.monotonic()
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(conn.recv(), timeout)
    assert info.value.rcvd is None and conn.close_code == 1006
    return time.monotonic() - start


def test_drop_now_is_1006_on_both_apis():
    with Simulator(seed=2, token=SECRET_TOKEN, rate=5, norman_ping=0.1, steve_ping=0.1) as sim:
        async def go() -> None:
            async with connect(ws(sim, "/v3/subscribe"), additional_headers=HEADERS) as n, \
                    connect(ws(sim, "/v1/subscribe"), additional_headers=HEADERS) as s:
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
    with Simulator(seed=2, token=SECRET_TOKEN, rate=50, steve_ping=0.1) as sim:
        async def go() -> None:
            async with connect(ws(sim, "/v1/subscribe"), additional_headers=HEADERS) as conn:
                await asyncio.wait_for(conn.recv(), 5)
                await asyncio.get_running_loop().run_in_executor(None, sim.stall)
                await asyncio.sleep(0.2)
                while True:  # drain what was in flight before the stall
                    try:
                        await asyncio.wait_for(conn.recv(), 0.4)
                    except TimeoutError:
                        break
                assert conn.state.name == "OPEN"

        asyncio.run(go())


def test_slow_consumer_is_dropped_on_norman():
    """A client that stops reading falls more than 100 events behind and is dropped, as norman's broadcaster does."""
    with Simulator(seed=2, token=SECRET_TOKEN, rate=4000, norman_ping=0.5, buffer=100) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]

        async def go() -> None:
            async with connect(ws(sim, f"/v3/projects/{project}/subscribe"), additional_headers=HEADERS,
                               max_queue=1, max_size=None) as conn:
                conn.transport.pause_reading()  # stop reading: the kernel buffers fill, then rancher's 100 do
                await asyncio.sleep(4)
                conn.transport.resume_reading()
                await closed_without_frame(conn, timeout=5)

        asyncio.run(go())


def test_slow_consumer_gets_resource_stop_on_steve():
    with Simulator(seed=2, token=SECRET_TOKEN, rate=4000, steve_ping=30, buffer=100) as sim:
        async def go() -> list[str]:
            async with connect(ws(sim, "/v1/subscribe"), additional_headers=HEADERS, max_queue=1, max_size=None) as conn:
                await conn.send('{"resourceType":"pod"}')
                conn.transport.pause_reading()
                await asyncio.sleep(4)
                conn.transport.resume_reading()
                names = []
                while "resource.stop" not in names:
                    names.append(json.loads(await asyncio.wait_for(conn.recv(), 5))["name"])
                return names

        names = asyncio.run(go())
        assert names[0] == "resource.start" and names[-1] == "resource.stop"


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
