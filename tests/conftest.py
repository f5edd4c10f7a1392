"""Shared test helpers: where the reference samples live, a distinctive token to grep for, and a builder of
stamped event streams from real objects, and what the server tests read off a socket."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rancherlab.protocol import Event, Kind, norman, parse_frame, steve

if TYPE_CHECKING:
    import pandas as pd
    from websockets.asyncio.client import ClientConnection

# Real frames and objects from public Rancher sources (see its SOURCES.md), kept with the tests so a
# fresh clone tests itself.
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "rancher-ws-samples"
# A credential distinctive enough that finding it anywhere it should not be is unambiguous.
SECRET_TOKEN = "token-zq9xk:Zq9SecretNeverLeaksAnywhere0123456789abcdefghijklmnop"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def sample_objects(name: str) -> list[dict[str, Any]]:
    """The objects of a sample: the response body of an audit record, or a collection's `data`."""
    doc = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return [doc["responseBody"]] if "responseBody" in doc else doc.get("data", [])


T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class EventLog:
    """Real objects wrapped in frames the way each server sends them, stamped like a live stream:
    event n gets `t = n * step` and a wall clock `ts` n seconds after `T0`."""

    def __init__(self, step: float = 1.0) -> None:
        self.step = step
        self.events: list[Event] = []

    def add(self, e: Event, conn: int = 1) -> EventLog:
        n = len(self.events) + 1
        self.events.append(e.stamped(seq=n, conn=conn, t=n * self.step, ts=T0 + timedelta(seconds=n)))
        return self

    def norman(self, obj: dict[str, Any], name: str = "resource.change", kind: Kind | None = None) -> EventLog:
        e = parse_frame(norman.resource_frame(name, obj), "norman")
        return self.add(e if kind is None else e.replace(kind=kind))

    def steve(self, obj: dict[str, Any], name: str = "resource.change") -> EventLog:
        text = steve.encode_event(
            name, data=obj, revision=obj["metadata"].get("resourceVersion"), echo={"resourceType": obj["type"]}
        )
        return self.add(parse_frame(text, "steve"))

    def frame(self) -> pd.DataFrame:
        from rancherlab.analysis import frame

        return frame(self.events)


@pytest.fixture(scope="session")
def frames_index() -> list[dict[str, Any]]:
    lines = (SAMPLES / "frames-index.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


async def received_within(conn: ClientConnection, seconds: float) -> list[str]:
    """Whatever arrives in the next `seconds` (pings included)."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(await asyncio.wait_for(conn.recv(), left))
        except TimeoutError:
            break
    return out
