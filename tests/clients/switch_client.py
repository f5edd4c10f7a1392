"""A Steve subscribe client with one switch per behaviour `rancherlab check-client` judges.

With no switch it does everything right: lists pods over REST, watches from the list's revision, keeps the
ids it holds, notices silence, reconnects with backoff and resumes from the last revision it received,
re-watches once after `resource.stop`, re-lists after "too old". Each switch breaks one of those, so the
tests can show that exactly the matching check fails.

Usage: python switch_client.py [--no-reconnect] [--spin] [--ignore-silence] [--no-relist] [--no-rewatch]
       [--rewatch-loop] [--resume-too-old] [--duplicate-watch] [--slow] [--token-in-url] [--write-state]
       [--wrong-state]   (RANCHER_URL, RANCHER_TOKEN_KEY, RANCHERLAB_STATE_FILE from the environment)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

LIVENESS = 1.0  # seconds of silence before the socket counts as dead (tests stall for longer)
TYPE = "pod"


class Client:
    def __init__(self, flags: argparse.Namespace) -> None:
        self.flags = flags
        self.url = os.environ["RANCHER_URL"].rstrip("/")
        self.token = os.environ["RANCHER_TOKEN_KEY"]
        self.state_file = os.environ.get("RANCHERLAB_STATE_FILE")
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.held: dict[str, Any] = {}
        self.revision: str | None = None
        self.too_old = False
        self.failures = 0
        self.own_stops = 0  # resource.stop answers to this client's own stops (the looping switch)

    async def list(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, trust_env=False) as http:
            body = (await http.get(f"/v1/{TYPE}s")).raise_for_status().json()
        self.held = {o["id"]: o for o in body.get("data", [])}
        self.revision = body.get("revision")
        self.write_state()

    def write_state(self) -> None:
        if not (self.flags.write_state or self.flags.wrong_state) or not self.state_file:
            return
        ids = sorted(self.held)
        if self.flags.wrong_state and ids:
            ids = ids[1:]
        with open(self.state_file, "a", encoding="utf-8") as f:
            f.write(json.dumps({"type": TYPE, "ids": ids}) + "\n")

    def watch(self, revision: str | None) -> str:
        msg: dict[str, str] = {"resourceType": TYPE}
        if revision:
            msg["resourceVersion"] = revision
        return json.dumps(msg)

    async def run(self) -> None:
        await self.list()
        first = True
        while True:
            if not first:
                if self.flags.no_reconnect:
                    await asyncio.sleep(3600)
                if not self.flags.no_relist and not self.revision:
                    await self.list()
                if self.flags.no_relist:
                    self.revision = None
            first = False
            try:
                await self.session()
                self.failures = 0
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError, httpx.HTTPError):
                self.failures += 1
            delay = 0.01 if self.flags.spin else min(4.0, 0.5 * 2 ** min(self.failures, 4))
            await asyncio.sleep(delay)

    async def session(self) -> None:
        ws_url = "ws" + self.url[4:] + "/v1/subscribe"
        if self.flags.token_in_url:
            ws_url += "?token=" + quote(self.token)
        sock = None
        if self.flags.slow:
            sock = socket.create_connection((self.url.split("//")[1].split(":")[0], int(self.url.rsplit(":", 1)[1])))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with connect(ws_url, additional_headers=self.headers, sock=sock, max_size=None, open_timeout=5) as ws:
            self.failures = 0  # connected: the next gap starts the backoff again
            await ws.send(self.watch(self.revision))
            if self.flags.duplicate_watch:
                await ws.send(self.watch(self.revision))
            while True:
                if self.flags.ignore_silence:
                    raw = await ws.recv()
                else:
                    async with asyncio.timeout(LIVENESS):
                        raw = await ws.recv()
                msg = json.loads(raw)
                if self.flags.slow and msg.get("name") in ("resource.create", "resource.change", "resource.remove"):
                    await asyncio.sleep(0.2)  # slow work on the reading path: Rancher sees a reader falling behind
                await self.handle(ws, msg)

    async def handle(self, ws: Any, msg: dict[str, Any]) -> None:
        name = msg.get("name")
        if name in ("resource.create", "resource.change"):
            self.held[msg["data"]["id"]] = msg["data"]
        elif name == "resource.remove":
            self.held.pop(msg["data"]["id"], None)
        elif name == "resource.error" and "too old" in str(msg.get("data", {}).get("error", "")):
            self.too_old = True
        elif name == "resource.stop":
            if self.own_stops:
                self.own_stops -= 1
                return
            if self.flags.no_rewatch:
                return
            if self.too_old and not self.flags.resume_too_old:
                self.too_old = False
                await self.list()
            if self.flags.rewatch_loop:
                for _ in range(3):
                    await ws.send(self.watch(self.revision))
                    await asyncio.sleep(0.05)
                    self.own_stops += 1
                    await ws.send(json.dumps({"resourceType": TYPE, "stop": True}))
            await ws.send(self.watch(self.revision))
            return
        if msg.get("revision") and name != "resource.error":
            self.revision = msg["revision"]
        self.write_state()


def main() -> None:
    p = argparse.ArgumentParser()
    for flag in (
        "no-reconnect",
        "spin",
        "ignore-silence",
        "no-relist",
        "no-rewatch",
        "rewatch-loop",
        "resume-too-old",
        "duplicate-watch",
        "slow",
        "token-in-url",
        "write-state",
        "wrong-state",
    ):
        p.add_argument(f"--{flag}", action="store_true")
    try:
        asyncio.run(Client(p.parse_args()).run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
