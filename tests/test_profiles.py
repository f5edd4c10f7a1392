"""Rancher version profiles: each behaviour that changed between releases, as a client reads it off a real socket
from the simulator (and from check-client's fault proxy), under the profile before and after the change."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from rancherlab.clientcheck._proxy import FaultProxy
from rancherlab.errors import UsageError
from rancherlab.simulator import PROFILES, Simulator, profile_for
from rancherlab.simulator.profiles import BEHAVIOURS, RancherProfile

from .conftest import SAMPLES, SECRET_TOKEN, received_within

HEADERS = {"Authorization": f"Bearer {SECRET_TOKEN}"}
Frames = list[dict[str, Any]]


def session(version: str, script: Callable[[ClientConnection, Simulator], Awaitable[Frames]], **options: Any) -> Frames:
    """Run `script` on a Steve socket of a simulator of that Rancher version (the world still unless it steps)."""
    options = {"rate": 0, **options}
    with Simulator(seed=3, token=SECRET_TOKEN, rancher_version=version, **options) as sim:

        async def go() -> Frames:
            async with connect(sim.url.replace("http", "ws", 1) + "/v1/subscribe", additional_headers=HEADERS) as ws:
                return await script(ws, sim)

        return asyncio.run(go())


def watch(msg: dict[str, Any], seconds: float = 0.5) -> Callable[[ClientConnection, Simulator], Awaitable[Frames]]:
    async def script(ws: ClientConnection, _sim: Simulator) -> Frames:
        await ws.send(json.dumps(msg))
        return [json.loads(f) for f in await received_within(ws, seconds)]

    return script


def named(frames: Frames, *names: str) -> Frames:
    return [f for f in frames if f.get("name") in names]


# --- which profile a version selects ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "profile"),
    [
        ("v2.5.16", "2.5"),
        ("2.6", "2.6"),
        ("v2.6.14", "2.6"),
        ("v2.7.1", "2.7.0"),
        ("2.7-head", "2.7-head"),
        ("v2.7-d2946e10867c411f86b7cd9ae6d77e857704f955-head", "2.7-head"),  # the build named in rancher#40131
        ("v2.7.2", "2.7.2"),
        ("v2.9.3", "2.7.2"),
        ("v2.11.6-rc1", "2.7.2"),
        ("v2.12.0", "2.12"),
        ("2.13.1", "2.12"),
    ],
)
def test_a_version_selects_the_profile_of_its_release_line(version: str, profile: str) -> None:
    assert profile_for(version).name == profile


@pytest.mark.parametrize("version", ["v2.4.17", "2.0", "latest", ""])
def test_a_version_no_profile_covers_is_a_usage_error_naming_the_profiles(version: str) -> None:
    with pytest.raises(UsageError, match=r"2\.5, 2\.6, 2\.7\.0, 2\.7-head, 2\.7\.2, 2\.12"):
        profile_for(version)


def test_every_behaviour_cites_a_public_rancher_source_and_every_profile_sets_each() -> None:
    for name, (seen, source) in BEHAVIOURS.items():
        assert seen and "rancher/" in source, name
        assert all(hasattr(p, name) for p in PROFILES.values())
    fields = set(RancherProfile.__dataclass_fields__) - {"name", "releases", "version"}
    assert fields == set(BEHAVIOURS)
    # each behaviour differs between at least two profiles: none is dead weight
    assert all(len({getattr(p, f) for p in PROFILES.values()}) == 2 for f in BEHAVIOURS)


def test_the_simulator_reports_the_release_asked_for_and_defaults_to_the_latest() -> None:
    with Simulator(rancher_version="v2.8.3", rate=0) as sim:
        assert sim.world.server_version == "v2.8.3" and sim.profile.name == "2.7.2"
        assert sim.config.steve_store == "proxy"
    with Simulator(rancher_version="2.7-head", rate=0, steve_store="sql") as sim:
        assert sim.config.steve_store == "sql"  # an explicit store wins over the profile's
    with Simulator(rate=0) as sim:
        assert sim.profile.name == "2.12" and sim.config.steve_store == "sql"


# --- each behaviour on the wire -------------------------------------------------------------------------


def test_2_7_head_sends_errors_as_a_resource_change_with_a_message() -> None:
    """rancher/rancher#40131: a client waiting for resource.error never learns its revision is too old."""
    too_old = {"resourceType": "pod", "resourceVersion": "1"}
    head = session("2.7-head", watch(too_old))
    assert [f["name"] for f in named(head, "resource.start", "resource.change", "resource.error", "resource.stop")] == [
        "resource.start",
        "resource.change",
        "resource.stop",
    ]
    change = named(head, "resource.change")[0]
    assert "too old resource version: 1" in change["data"]["message"] and "id" not in change["data"]
    # the shape reported in the issue: data holds type, links, metadata and message, and nothing else
    reported = json.loads(
        "{" + (SAMPLES / "steve-v1-resource-error-regressed-fragment-rancher-issue40131-block2.txt").read_text() + "}"
    )
    assert set(change) == set(reported) and set(change["data"]) == set(reported["data"])
    assert change["data"]["type"] == "pod"

    before = session("2.7.0", watch(too_old))
    error = named(before, "resource.error")
    assert len(error) == 1 and "too old resource version: 1" in error[0]["data"]["error"]
    assert named(before, "resource.change") == []
    # unknown types too: the error of a failed watch is a change on 2.7-head only
    assert named(session("2.7-head", watch({"resourceType": "nosuch"})), "resource.change")[0]["data"]["message"] == (
        "failed to find schema nosuch"
    )
    assert named(session("2.7.2", watch({"resourceType": "nosuch"})), "resource.error")[0]["data"] == {
        "error": "failed to find schema nosuch"
    }


def test_resource_start_echoes_the_namespace_only_from_2_7_2() -> None:
    """rancher/rancher#40196 (2.7.0), fixed by apiserver a05eae6 (rancher/rancher#40238)."""
    msg = {"resourceType": "pod", "namespace": "default", "selector": "app=web"}
    old = named(session("2.7.0", watch(msg, 0.3)), "resource.start")
    new = named(session("2.7.2", watch(msg, 0.3)), "resource.start")
    # id and selector were always echoed; the namespace was not
    assert old == [{"name": "resource.start", "resourceType": "pod", "selector": "app=web", "data": old[0]["data"]}]
    assert new[0]["namespace"] == "default" and new[0]["selector"] == "app=web"


def pod_events(version: str) -> Frames:
    async def script(ws: ClientConnection, sim: Simulator) -> Frames:
        revision = str(sim.world.revision)
        await ws.send(json.dumps({"resourceType": "pod", "resourceVersion": revision}))
        await received_within(ws, 0.2)
        for _ in range(40):  # until the world changed some pod
            await asyncio.to_thread(sim.step, 20)
            got = named([json.loads(f) for f in await received_within(ws, 0.2)], *_RESOURCE)
            if got:
                return got
        raise AssertionError("no pod changed")

    return session(version, script)


_RESOURCE = ("resource.create", "resource.change", "resource.remove")


def test_events_carry_resource_type_and_namespace_only_from_2_12() -> None:
    """rancher/apiserver#160: before, a client routes events by data.type."""
    for event in pod_events("2.7.2"):
        assert "resourceType" not in event and "namespace" not in event
        assert event["data"]["type"] == "pod" and event["revision"]
    for event in pod_events("2.12"):
        assert event["resourceType"] == "pod" and event["data"]["type"] == "pod"


def count_updates(version: str) -> Frames:
    """The first `count` frame, then the first update after some world changes."""

    async def script(ws: ClientConnection, sim: Simulator) -> Frames:
        await ws.send(json.dumps({"resourceType": "count"}))
        first = named([json.loads(f) for f in await received_within(ws, 0.3)], "resource.change")
        for _ in range(40):  # until a change reached this cluster's counts
            await asyncio.to_thread(sim.step, 3)
            update = named([json.loads(f) for f in await received_within(ws, 0.3)], "resource.change")
            if update:
                return first + update
        raise AssertionError("no count update")

    return session(version, script, count_interval=0.1)


def test_count_updates_carry_only_what_changed_from_2_7_2() -> None:
    """rancher/steve#58 (rancher/rancher#36681): merge a partial update into the counts you hold."""
    full, update = count_updates("2.6")[:2]
    assert set(update["data"]["counts"]) == set(full["data"]["counts"])  # every type, every time
    first, partial = count_updates("2.7.2")[:2]
    assert 0 < len(partial["data"]["counts"]) < len(first["data"]["counts"])


def test_the_default_store_replays_existing_objects_up_to_2_11_and_not_from_2_12() -> None:
    """The proxy store starts a watch without a revision with a resource.create per object; the SQL cache does
    not (rancher/rancher#48691)."""
    msg = {"resourceType": "namespace"}
    replay = named(session("v2.11.6", watch(msg, 0.4)), "resource.create")
    assert len(replay) > 3 and all(f["data"]["type"] == "namespace" for f in replay)
    assert named(session("v2.12.0", watch(msg, 0.4)), "resource.create") == []


def test_pings_carry_the_server_version_only_from_2_6() -> None:
    """rancher/apiserver 96c000d: the dashboard reads the server version from the ping."""

    async def pings(ws: ClientConnection, _sim: Simulator) -> Frames:
        return named([json.loads(f) for f in await received_within(ws, 0.35)], "ping")

    old = session("2.5", pings, steve_ping=0.1)
    new = session("v2.6.9", pings, steve_ping=0.1)
    assert old and all(p["data"] == {"type": "subscribe", "links": {}} for p in old)
    assert new and all(p["data"]["version"] == "v2.6.9" for p in new)


def test_check_clients_fault_proxy_answers_in_the_profiles_frames() -> None:
    """check-client's own "too old" answer follows the profile: on 2.7-head a client must read it from a
    resource.change."""

    async def too_old(profile: str) -> Frames:
        with Simulator(seed=3, token=SECRET_TOKEN, rate=0, rancher_version=profile) as sim:
            proxy = FaultProxy(sim.url, secrets=(SECRET_TOKEN,), profile=PROFILES[profile])
            await proxy.start()
            try:
                async with connect(
                    proxy.url.replace("http", "ws", 1) + "/v1/subscribe", additional_headers=HEADERS
                ) as ws:
                    await proxy.expire("too-old")
                    await ws.send(json.dumps({"resourceType": "pod", "resourceVersion": str(sim.world.revision)}))
                    return [json.loads(f) for f in await received_within(ws, 0.3)]
            finally:
                await proxy.stop()

    head = asyncio.run(too_old("2.7-head"))
    assert [f["name"] for f in head] == ["resource.start", "resource.change", "resource.stop"]
    assert "too old resource version" in head[1]["data"]["message"]
    latest = asyncio.run(too_old("2.12"))
    assert [f["name"] for f in latest] == ["resource.start", "resource.error", "resource.stop"]
    assert latest[1]["data"]["error"] == "resourceversion too old"  # the SQL cache's text


@pytest.mark.parametrize("command", ["simulate", "check-client"])
def test_the_commands_refuse_an_unknown_version_with_exit_2(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rancherlab", command, "--rancher-version", "v2.4.0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "profiles cover v2.5 and later" in done.stderr


def test_the_readme_table_of_profiles_is_the_data() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Rancher version profiles", 1)[1].split("\n\n")[2].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[1:-1] == list(PROFILES)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert len(rows) == len(BEHAVIOURS)
    for behaviour, row in zip(BEHAVIOURS, rows):
        values = [getattr(p, behaviour) for p in PROFILES.values()]
        shown = [v if isinstance(v, str) else ("yes" if v else "no") for v in values]
        assert row[1:-1] == shown, behaviour
