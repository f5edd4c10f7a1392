"""REST answers of the simulated Rancher (placeholder until the full version lands)."""

from __future__ import annotations

from typing import Any

from .world import World


def handle_rest(world: World, path: str, query: dict[str, list[str]], base_url: str) -> tuple[int, dict[str, Any]] | None:
    """Status and JSON body for a REST path, or None when the path is not one Rancher serves here."""
    return None
