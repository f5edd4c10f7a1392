"""Rancher version profiles: what Steve's `/v1/subscribe` sent in each line of Rancher releases.

Clients trip on the behaviours that changed between releases; each is one field of `RancherProfile`, with its
public source in `BEHAVIOURS`, and each profile of `PROFILES` sets them as that release line did. The simulator's
Steve sessions (and `rancherlab check-client`'s fault proxy) build their frames through the profile, so
`Simulator(rancher_version="2.7.0")` sends what Rancher 2.7.0 sent. Norman's `/v3/subscribe` did not change in
these releases (rancher/norman `pkg/subscribe`), so Norman sessions are the same under every profile.

The frame layout itself (field order, omitted empty fields) is the protocol layer's (`rancherlab.protocol.steve`);
a profile only chooses which fields a frame carries and, for 2.7-head, which name it has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ..errors import UsageError
from ..protocol import steve

Store = Literal["sql", "proxy"]


@dataclass(frozen=True, slots=True)
class RancherProfile:
    """The behaviours of one line of Rancher releases (see `BEHAVIOURS` for each field's meaning and source)."""

    name: str  # the profile's name, e.g. "2.7.2"
    releases: str  # the releases it stands for, e.g. "v2.7.2 to v2.11.x"
    version: str  # the server version it reports (settings, pings) unless the caller names one
    steve_store: Store  # the default Steve store
    ping_version: bool  # Steve pings carry data.version
    start_namespace: bool  # resource.start echoes the watch's namespace
    event_keys: bool  # resource.create/change/remove carry resourceType and namespace
    error_as_change: bool  # errors arrive as resource.change with data.message (the 2.7-head regression)
    partial_counts: bool  # `count` updates carry only the types that changed

    # --- frames, as this release line built them ---------------------------------------------------
    def ping(self, version: str | None) -> str:
        """A Steve ping: `data.version` only from apiserver 96c000d (Rancher 2.6) on."""
        return steve.ping(version if self.ping_version else None)

    def start_event(self, echo: Mapping[str, str]) -> str:
        """`resource.start`: the watch's namespace echoed only from apiserver a05eae6 (Rancher 2.7.2) on."""
        return steve.start_event(echo if self.start_namespace else {**echo, "namespace": ""})

    def event(self, name: str, *, data: object, revision: str | None, echo: Mapping[str, str]) -> str:
        """`resource.create`/`change`/`remove`: `resourceType` and `namespace` only from apiserver#160 (Rancher
        2.12) on; `id` and `selector` were always echoed (apiserver b4d1106, 2020)."""
        if not self.event_keys:
            echo = {**echo, "resourceType": "", "namespace": ""}
        return steve.encode_event(name, data=data, revision=revision, echo=echo)

    def error_event(self, text: str, echo: Mapping[str, str] | None = None, schema: str = "") -> str:
        """`resource.error` with `data.error`; on 2.7-head a `resource.change` whose data holds `type`, empty
        `links` and `metadata`, and `message` (rancher/rancher#40131, the frame reported there)."""
        if self.error_as_change:
            kind = schema or (echo or {}).get("resourceType", "")
            return steve.encode_event(
                "resource.change", data={"type": kind, "links": {}, "metadata": {}, "message": text}
            )
        return steve.error_event(text, echo)

    def too_old(self, asked: str, current: str | int) -> str:
        """The text of the "too old" error of this profile's default store (rancher/steve `pkg/stores/proxy`,
        `pkg/sqlcache/informer/listoption_indexer.go`)."""
        if self.steve_store == "proxy":
            return f"event watch error: too old resource version: {asked} ({current})"
        return "resourceversion too old"


# behaviour (a RancherProfile field) → (what a client sees, the public source)
BEHAVIOURS: Final[dict[str, tuple[str, str]]] = {
    "steve_store": (
        (
            "the default Steve store: `proxy` replays a resource.create per existing object to a watch without a "
            "revision and expires watches after 30 min; `sql` (the SQL cache) replays nothing and never expires"
        ),
        (
            "rancher/steve `pkg/stores/proxy`, `pkg/sqlcache`; the `ui-sql-cache` feature is opt-in from v2.9 and on "
            "by default from v2.12.0 (rancher/rancher#48691, rancher/rancher#50679)"
        ),
    ),
    "ping_version": (
        "the ping's `data.version` (the dashboard reads the server version from it); older pings carry none",
        "rancher/apiserver 96c000d, 'Add server version to websocket pings' (2021-08), first in Rancher v2.6.0",
    ),
    "start_namespace": (
        (
            "`resource.start` echoes the watch's `namespace`; before, a client watching two namespaces of one type "
            "could not tell which watch had started"
        ),
        "rancher/rancher#40196 (2.7.0), fixed by rancher/apiserver a05eae6 through rancher/rancher#40238 (v2.7.2)",
    ),
    "event_keys": (
        "resource.create/change/remove carry `resourceType` and `namespace`; before, route by `data.type`",
        "rancher/apiserver#160 (apiserver v0.6.1, 2025-05; rancher/rancher#40773), first in Rancher v2.12.0",
    ),
    "error_as_change": (
        (
            "errors arrive as `resource.change` with `data.message` and no `data.id` instead of `resource.error` "
            'with `data.error`: a client matching `resource.error` never sees "too old"'
        ),
        (
            "rancher/rancher#40131 (2.7-head builds of January 2023, fixed before v2.7.2); the dashboard's "
            "workaround, rancher/dashboard#7900, ignores a resource.change without an id"
        ),
    ),
    "partial_counts": (
        (
            "a `count` update carries only the types whose counts changed (merge it into what you hold); before, "
            "every update carried the whole map"
        ),
        "rancher/steve#58 for rancher/rancher#36681 (v2.7.2; not backported to 2.6); rancher/dashboard#7566",
    ),
}


def _profile(
    name: str,
    releases: str,
    version: str,
    store: Store,
    *,
    ping_version: bool = True,
    start_namespace: bool = True,
    event_keys: bool = True,
    error_as_change: bool = False,
    partial_counts: bool = True,
) -> RancherProfile:
    return RancherProfile(
        name, releases, version, store, ping_version, start_namespace, event_keys, error_as_change, partial_counts
    )


_OLD = {"start_namespace": False, "event_keys": False, "partial_counts": False}

# Oldest first; a version number selects the last profile whose name is not newer than it.
PROFILES: Final[dict[str, RancherProfile]] = {
    p.name: p
    for p in (
        _profile("2.5", "v2.5.x", "v2.5.17", "proxy", ping_version=False, **_OLD),
        _profile("2.6", "v2.6.x", "v2.6.14", "proxy", **_OLD),
        _profile("2.7.0", "v2.7.0 to v2.7.1", "v2.7.1", "proxy", **_OLD),
        _profile(
            "2.7-head", "v2.7 development builds of January 2023", "v2.7-head", "proxy", error_as_change=True, **_OLD
        ),
        _profile("2.7.2", "v2.7.2 to v2.11.x", "v2.11.6", "proxy", event_keys=False),
        _profile("2.12", "v2.12.0 and later (the default)", "v2.12.0", "sql"),
    )
}
LATEST: Final = PROFILES["2.12"]
_NUMBERED: Final = [(tuple(int(x) for x in n.split(".")), p) for n, p in PROFILES.items() if "head" not in n]
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")
_HEAD = re.compile(r"^v?2\.7-(?:[0-9a-f]+-)?head$")


def profile_for(version: str) -> RancherProfile:
    """The profile of a Rancher version: a profile name (`2.7-head`), or a release (`v2.8.3`, `2.12`).

    Raises `UsageError` for a version older than 2.5 or one that is not a version, naming the profiles.
    """
    text = version.strip()
    if text in PROFILES:
        return PROFILES[text]
    if _HEAD.match(text):
        return PROFILES["2.7-head"]
    m = _VERSION.match(text)
    known = ", ".join(PROFILES)
    if m is None:
        raise UsageError(f"{version!r} is not a Rancher version: give one like v2.8.3, or a profile ({known})")
    number = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    chosen = [p for n, p in _NUMBERED if n <= number[: len(n)]]
    if not chosen:
        raise UsageError(f"no profile for Rancher {version}: profiles cover v2.5 and later ({known})")
    return chosen[-1]


__all__ = ["BEHAVIOURS", "LATEST", "PROFILES", "RancherProfile", "profile_for"]
