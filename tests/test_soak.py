"""The soak in `make test`: the same code as `make soak` (benchmarks/soak.py), 32 s instead of 30 min, at 1,000
events/s with a drop every 8 s. The capture's RSS must grow less than 10 % after the warm-up (which includes a
drop and a resume) and nothing may be lost: every revision the server produced after the first watch is in the
recording, and the state rebuilt from the recording equals the server's."""

from __future__ import annotations

import pytest

from benchmarks.soak import GROWTH_LIMIT, run_soak


@pytest.mark.timeout(150)
def test_soak_short_memory_flat_nothing_lost() -> None:
    result = run_soak(32, rate=1000, drop_every=8)
    print(result.line())
    assert result.drops >= 3 and result.reconnects >= result.drops  # every drop was noticed and recovered from
    assert result.revisions_expected > 10_000 and result.revisions_missing == 0
    assert result.state_equal
    assert result.growth < GROWTH_LIMIT, result.line()
