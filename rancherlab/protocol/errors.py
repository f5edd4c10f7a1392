"""The root of rancherlab's errors, and the errors of the protocol core. Each message says what was wrong and
what to do about it.

`RancherlabError` and `UsageError` live here, in the lowest layer, so that every layer (the protocol core
included) raises errors of the one hierarchy; `rancherlab.errors` re-exports them with the I/O errors. Which
exit code the command line returns for each error is decided in one place, `rancherlab.cli.exit_code`.
"""

from __future__ import annotations


class RancherlabError(Exception):
    """The root of every error rancherlab raises on purpose."""


class UsageError(RancherlabError, ValueError):
    """Something the caller passed cannot work (a bad scope, URL, option or argument); fix the call.

    A `ValueError` too, so `except ValueError` around a call keeps working.
    """


class ProtocolError(RancherlabError, ValueError):
    """A frame or message that is not what a Rancher 2 subscribe socket sends."""


class LegacyFrameError(ProtocolError):
    """A Rancher 1.x (Cattle) frame: a different API that rancherlab does not speak."""
