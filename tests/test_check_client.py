"""`rancherlab check-client` judges real clients over real loopback sockets: a client that does everything
right passes, `rancherlab record` passes, and each broken behaviour fails exactly its own check."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rancherlab.clientcheck import CHECKS, CheckReport, CheckSchedule, ClientCheck

HERE = Path(__file__).resolve().parent
SWITCH_CLIENT = HERE / "clients" / "switch_client.py"

# Short enough for the suite, long enough for a client with a 1 s liveness and 0.5 s doubling backoff.
FAST = CheckSchedule(
    connect_timeout=30,
    reconnect_timeout=15,
    settle=1.0,
    window=2.5,
    stall=2.0,
    down=2.0,
    burst=4000,
    rate=5,
    final=1.5,
    ping=0.3,
)


def check(cmd: str, schedule: CheckSchedule = FAST) -> CheckReport:
    return ClientCheck(cmd=cmd, schedule=schedule, client_output=subprocess.DEVNULL).run()  # type: ignore[arg-type]


def client(*switches: str) -> str:
    return " ".join([sys.executable, str(SWITCH_CLIENT), *switches])


def failed(report: CheckReport) -> set[str]:
    return {r.id for r in report.results if r.outcome == "fail"}


# switch → the one check it must make fail
SWITCHES = {
    "--no-reconnect": "reconnects_after_drop",
    "--spin": "backoff_not_spin",
    "--ignore-silence": "notices_silent_socket",
    "--no-relist": "relists_or_resumes_after_gap",
    "--rewatch-loop": "rewatches_once_after_stop",
    "--resume-too-old": "relists_after_too_old",
    "--duplicate-watch": "no_duplicate_watches",
    "--slow": "keeps_up_with_burst",
    "--token-in-url": "no_credential_in_url",
    "--wrong-state": "state_matches_server",
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CheckReport]:
    """Every client of this module checked once, five at a time (each check is mostly waiting)."""
    out = tmp_path_factory.mktemp("record") / "pods.jsonl"
    cases = {
        "good": client("--write-state"),
        "record": f"{sys.executable} -m rancherlab record -q --scope steve --type pod --liveness 1 --out {out}",
        **{switch: client(switch) for switch in SWITCHES},
    }
    with ThreadPoolExecutor(max_workers=5) as pool:
        return dict(zip(cases, pool.map(check, cases.values())))


def test_a_client_that_does_everything_right_passes_every_check(reports: dict[str, CheckReport]) -> None:
    report = reports["good"]
    assert report.dialect == "steve"
    # every check was exercised and passed: none was n/a for want of a fault
    assert {r.id: r.outcome for r in report.results} == dict.fromkeys(CHECKS, "pass"), report.text()
    assert report.exit_code == 0


def test_every_check_has_a_switch() -> None:
    assert set(SWITCHES.values()) == set(CHECKS)


@pytest.mark.parametrize("switch", SWITCHES)
def test_each_switch_fails_exactly_its_own_check(reports: dict[str, CheckReport], switch: str) -> None:
    report = reports[switch]
    assert failed(report) == {SWITCHES[switch]}, report.text()
    assert report.exit_code == 7


def test_rancherlab_record_passes_every_check(reports: dict[str, CheckReport]) -> None:
    report = reports["record"]
    assert failed(report) == set(), report.text()
    outcomes = {r.id: r.outcome for r in report.results}
    assert outcomes["state_matches_server"] == "n/a"  # it keeps a recording, not a state file
    assert all(o == "pass" for k, o in outcomes.items() if k != "state_matches_server"), report.text()


@pytest.mark.timeout(300)
def test_the_command_prints_the_card_writes_json_and_exits_7_on_a_failure(tmp_path: Path) -> None:
    card = tmp_path / "card.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rancherlab",
            "check-client",
            "--cmd",
            client("--token-in-url"),
            "--json",
            str(card),
            "--settle",
            "0.5",
            "--window",
            "2",
            "--stall",
            "1.5",
            "--down",
            "1.5",
            "--burst",
            "200",
            "--final",
            "1",
            "--ping",
            "0.3",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 7, done.stdout + done.stderr
    assert "FAIL  keeps the credential out of the URL" in done.stdout
    assert "do this: Send the token in an Authorization header" in done.stdout
    doc = json.loads(card.read_text())
    assert doc["passed"] is False and doc["dialect"] == "steve"
    assert {c["id"]: c["outcome"] for c in doc["checks"]}["no_credential_in_url"] == "fail"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rancherlab", "check-client", "--recording", str(tmp_path / "nothing.jsonl")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no recording at" in done.stderr
