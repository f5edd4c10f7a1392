"""Errors of the protocol core. Each message says what was wrong and what to do about it."""

from __future__ import annotations


class ProtocolError(ValueError):
    """A frame or message that is not what a Rancher 2 subscribe socket sends."""


class LegacyFrameError(ProtocolError):
    """A Rancher 1.x (Cattle) frame: a different API that rancherlab does not speak."""
