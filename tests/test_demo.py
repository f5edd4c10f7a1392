"""`rancherlab demo` (what `make demo` runs) shows both APIs, records, replays and analyses."""

from __future__ import annotations

import subprocess
import sys


def test_demo_shows_every_section(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rancherlab", "demo", "--seconds", "2", "--norman-ping", "0.5", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for title in (
        "Endpoints and authentication",
        "Events by name and type",
        "One pod change, both shapes",
        "Recorded, then replayed",
        "The events as a DataFrame",
        "State a client would hold",
        "What a change changes",
        "Event schema highlights",
        "Report",
    ):
        assert f"== {title}" in out, title
    assert "norman  frame     ping" in out  # at least one Norman ping
    assert "steve   frame     resource." in out and "norman  frame     resource.change" in out
    assert out.count("identical to what was received") == 2
    assert "Norman /v3 (project scope)" in out and "Steve /v1 (cluster)" in out
    assert "Bearer token-" in out and "…" in out  # the credential is shown masked only
    report = tmp_path / "demo-report.html"
    assert report.exists() and report.read_text().count("data:image/png;base64,") >= 1
    assert (tmp_path / "demo-norman.jsonl").exists() and (tmp_path / "demo-steve.jsonl").exists()
