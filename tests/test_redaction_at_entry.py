"""Secrets are redacted where events enter rancherlab, not only in the recording writer.

Captures of the simulator's secrets (Steve `secret` watches, Norman's namespaced secret types) WITHOUT a
recording: no secret value may reach `capture.events`, an `on_event` sink, `rl.frame`, `rl.schema` or
`rl.subscribe` consumers. With a recording, every placeholder in it hides an original value: one level
of redaction, never a placeholder of a placeholder.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rancherlab as rl
from rancherlab.protocol.event import Event
from rancherlab.recording import read_recording

from .conftest import SECRET_TOKEN

pytestmark = pytest.mark.timeout(60)

NORMAN_SECRET_TYPES = (
    "namespacedSecret",
    "namespacedBasicAuth",
    "namespacedCertificate",
    "namespacedDockerCredential",
    "namespacedSshAuth",
)
PLACEHOLDER = re.compile(r"<redacted len=(\d+) hmac=([0-9a-f]{12})>")
TOKEN_FORMS = (
    SECRET_TOKEN,
    SECRET_TOKEN.split(":")[1],
    base64.b64encode(SECRET_TOKEN.encode()).decode(),
    base64.urlsafe_b64encode(SECRET_TOKEN.encode()).decode(),
)
# Data keys whose value is public: certificates (Norman shows them as `certs`, as Rancher does) and a basic-auth
# user name (Norman's `username`).
PUBLIC_KEYS = (".crt", "username")
FAST: dict[str, Any] = {
    "env": {},
    "cli_config": False,
    "credentials": SECRET_TOKEN,
    "liveness": 3.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
}


def _decoded(value: str) -> str:
    return base64.b64decode(value).decode("utf-8", "replace")


def _secret_values(truth: dict[tuple[str, str, str | None, str], dict[str, Any]]) -> set[str]:
    """Every secret value of the world: base64 as stored, decoded, the distinctive lines of decoded keys, and
    the password and auth inside a docker config."""
    values: set[str] = set()
    for (kind, *_), obj in truth.items():
        if kind != "secret":
            continue
        for key, value in (obj.get("data") or {}).items():
            if key.endswith(PUBLIC_KEYS):
                continue
            values.add(value)
            decoded = _decoded(value)
            values.add(decoded.strip())
            values.update(line for line in decoded.splitlines() if len(line) >= 16 and "-----" not in line)
            if key == ".dockerconfigjson":
                for registry in json.loads(decoded)["auths"].values():
                    values.update(registry[k] for k in ("password", "auth") if registry.get(k))
    return {v for v in values if len(v) >= 8}


def _texts(event: Event) -> Iterator[str]:
    yield repr(event)
    yield event.raw or ""
    yield json.dumps([event.data, event.info, event.watch, event.id, event.type], default=str)


def _leaks(texts: Iterator[str] | list[str], secrets: set[str]) -> list[str]:
    blob = "\n".join(texts)
    return sorted({s[:12] + "…" for s in (*secrets, *TOKEN_FORMS) if s in blob})


class _World:
    def __init__(self, sim: rl.Simulator, captures: list[rl.Capture], sunk: list[Event], secrets: set[str]) -> None:
        self.sim, self.captures, self.sunk, self.secrets = sim, captures, sunk, secrets

    @property
    def events(self) -> list[Event]:
        return [e for cap in self.captures for e in cap.events]


@pytest.fixture(scope="module")
def world() -> Iterator[_World]:
    # the proxy store replays a watch without a revision as frames, so objects come by both paths
    with rl.Simulator(
        seed=24, token=SECRET_TOKEN, rate=20, norman_ping=0.2, steve_ping=0.2, steve_store="proxy", drop_every=1.0
    ) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        sunk: list[Event] = []
        captures = [
            rl.capture(
                sim.url, f"steve:{cluster}", watches=[rl.Watch("secret")], duration=2.5, on_event=sunk.append, **FAST
            ),
            rl.capture(
                sim.url,
                f"steve:{cluster}",
                watches=[rl.Watch("secret")],
                duration=2.5,
                snapshot=False,
                on_event=sunk.append,
                **FAST,
            ),
            *[
                rl.capture(
                    sim.url, f"project:{p}", types=NORMAN_SECRET_TYPES, duration=2.5, on_event=sunk.append, **FAST
                )
                for p in sim.world.projects(cluster)
            ],
        ]
        for cap in captures:
            cap.wait(20)
        yield _World(sim, captures, sunk, _secret_values(sim.ground_truth()))


def test_the_captures_saw_the_secrets_redacted(world: _World) -> None:
    assert len(world.secrets) >= 10
    objects = [e for e in world.events if e.is_resource and e.type in ("secret", *NORMAN_SECRET_TYPES)]
    kinds = {e.kind for e in objects}
    assert {"snapshot", "frame"} <= kinds and {e.dialect for e in objects} == {"norman", "steve"}
    redacted = [e for e in objects if "<redacted len=" in json.dumps(e.data)]
    assert len(redacted) >= 20
    assert all(cap.redactor.policy["enabled"] and cap.redactor.policy["credentials"] >= 1 for cap in world.captures)


def test_no_secret_in_capture_events(world: _World) -> None:
    assert not _leaks([t for e in world.events for t in _texts(e)], world.secrets)


def test_no_secret_in_what_a_sink_received(world: _World) -> None:
    assert len(world.sunk) == sum(cap.stats.events for cap in world.captures)
    assert not _leaks([t for e in world.sunk for t in _texts(e)], world.secrets)


def test_no_secret_in_dataframes_and_the_schema_catalog(world: _World) -> None:
    df = rl.frame(world.events, pings=True)
    assert len(df) == len(world.events)
    cells = [str(v) for column in df.columns for v in df[column].tolist()]
    assert not _leaks(cells, world.secrets)
    catalog = rl.schema(df)
    assert catalog["examples"].astype(str).str.contains("redacted len=").any()
    assert not _leaks([catalog.to_string(), *map(str, catalog["examples"].tolist())], world.secrets)
    for cap in world.captures:
        assert not _leaks([cap.frame(pings=True).to_string()], world.secrets)


def test_no_secret_from_subscribe(world: _World) -> None:
    cluster = next(c for c in world.sim.world.clusters() if c != "local")
    project = world.sim.world.projects(cluster)[0]

    async def take(scope: str, **kwargs: Any) -> list[Event]:
        events: list[Event] = []
        async with contextlib.aclosing(rl.subscribe(world.sim.url, scope, **kwargs, **FAST)) as stream:
            async for event in stream:
                events.append(event)
                if sum(e.is_ping for e in events) >= 3:
                    break
        return events

    async def run() -> list[Event]:
        steve, norman = await asyncio.gather(
            take(f"steve:{cluster}", types=["secret"], snapshot=False),
            take(f"project:{project}", types=NORMAN_SECRET_TYPES),
        )
        return [*steve, *norman]

    events = asyncio.run(run())
    # `data` holds the placeholder as text; `raw` may hold it Go-escaped (`\u003credacted`)
    assert sum(e.is_resource and PLACEHOLDER.search(json.dumps(e.data)) is not None for e in events) >= 5
    assert not _leaks([t for e in events for t in _texts(e)], world.secrets)


def _originals(truth: dict[tuple[str, str, str | None, str], dict[str, Any]]) -> set[str]:
    """Every string a placeholder may stand for: each string in a secret, decoded, and inside a docker config."""
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            out.add(node)

    for (kind, *_), obj in truth.items():
        if kind != "secret":
            continue
        walk(obj)
        for key, value in (obj.get("data") or {}).items():
            decoded = _decoded(value)
            out.update((decoded, decoded.strip()))
            if key == ".dockerconfigjson":
                walk(json.loads(decoded))
    return out


def test_a_recording_has_one_level_of_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "secrets.jsonl"
    with rl.Simulator(seed=25, token=SECRET_TOKEN, rate=0, norman_ping=0.2, steve_ping=0.2) as sim:
        cluster = next(c for c in sim.world.clusters() if c != "local")
        project = sim.world.projects(cluster)[0]
        steve = rl.capture(sim.url, f"steve:{cluster}", watches=[rl.Watch("secret")], record=path, duration=1.2, **FAST)
        norman = rl.capture(
            sim.url, f"project:{project}", types=NORMAN_SECRET_TYPES, record=tmp_path / "n.jsonl", duration=1.2, **FAST
        )
        steve.wait(20)
        norman.wait(20)
        truth = sim.ground_truth()
    originals, secrets = _originals(truth), _secret_values(truth)
    for cap, file in ((steve, path), (norman, tmp_path / "n.jsonl")):
        text = file.read_text()
        rec = read_recording(file)
        assert rec.header.redaction == cap.redactor.policy  # the stream's redactor is the one recorded
        by_placeholder = {cap.redactor.placeholder(v): v for v in originals}
        found = [m.group() for e in rec for m in PLACEHOLDER.finditer(e.raw or json.dumps(e.data))]
        assert len(found) >= 3
        unknown = sorted({p for p in found if p not in by_placeholder})
        assert not unknown, f"placeholders of no original value (redacted twice?): {unknown[:3]}"
        for p in found:
            assert int(PLACEHOLDER.fullmatch(p).group(1)) == len(by_placeholder[p])  # type: ignore[union-attr]
        assert not _leaks([text], secrets)
