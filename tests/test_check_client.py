"""`rancherlab check-client` judges real clients over real loopback sockets: a client that does everything
right passes, `rancherlab record` passes, and each broken behaviour fails exactly its own check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from rancherlab.clientcheck import CHECKS

from ._node import ensure_node, ensure_npm_package

HERE = Path(__file__).resolve().parent
SWITCH_CLIENT = HERE / "clients" / "switch_client.py"
NODE_EXAMPLE = HERE.parent / "examples" / "node-client"

# The schedule, short enough for the suite and long enough for a client with a 1 s liveness and 0.5 s doubling
# backoff (the Rancher server pings every 0.3 s).
FAST = {
    "--connect-timeout": 30,
    "--reconnect-timeout": 10,
    "--settle": 1.0,
    "--window": 2.5,
    "--stall": 2.0,
    "--down": 2.0,
    "--burst": 4000,
    "--rate": 5,
    "--final": 1.5,
    "--ping": 0.3,
}


@dataclass(frozen=True)
class Card:
    """What `rancherlab check-client` printed, wrote as JSON and exited with."""

    outcomes: dict[str, str]
    dialect: str | None
    text: str
    exit_code: int


def check(cmd: str, folder: Path, rancher_version: str | None = None) -> Card:
    """One `rancherlab check-client` run, as a process of its own (its server, proxy and schedule get a GIL each)."""
    card = folder / f"card-{abs(hash((cmd, rancher_version)))}.json"
    args = [sys.executable, "-m", "rancherlab", "check-client", "--cmd", cmd, "--json", str(card)]
    args += [str(x) for flag, value in FAST.items() for x in (flag, value)]
    if rancher_version:
        args += ["--rancher-version", rancher_version]
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=400)
    assert done.returncode in (0, 7), done.stdout + done.stderr[-3000:]
    doc = json.loads(card.read_text())
    return Card({c["id"]: c["outcome"] for c in doc["checks"]}, doc["dialect"], done.stdout, done.returncode)


# cases checked against an older Rancher's frames: case → profile
PROFILED = {"node-2.7-head": "2.7-head"}


def client(*switches: str) -> str:
    return " ".join([sys.executable, str(SWITCH_CLIENT), *switches])


def failed(card: Card) -> set[str]:
    return {check for check, outcome in card.outcomes.items() if outcome == "fail"}


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


def node_examples(into: Path) -> str:
    """The Node example clients copied into `into`, with the `ws` package from npm beside them; the `node` to run."""
    node, _ = ensure_node()
    prefix = ensure_npm_package("ws", "8")
    for script in NODE_EXAMPLE.glob("*.mjs"):
        shutil.copy(script, into / script.name)
    (into / "node_modules").symlink_to(prefix / "node_modules", target_is_directory=True)
    return node


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Card]:
    """Every client of this module checked once, five at a time (each check is mostly waiting)."""
    cards = tmp_path_factory.mktemp("cards")
    out = tmp_path_factory.mktemp("record") / "pods.jsonl"
    js = tmp_path_factory.mktemp("node-client")
    node = node_examples(js)
    cases = {
        "node": f"{node} {js / 'client.mjs'}",
        "node-naive": f"{node} {js / 'naive.mjs'}",
        "node-2.7-head": f"{node} {js / 'client.mjs'}",
        "good": client("--write-state"),
        "record": f"{sys.executable} -m rancherlab record -q --scope steve --type pod --liveness 1 --out {out}",
        **{switch: client(switch) for switch in SWITCHES},
    }
    with ThreadPoolExecutor(max_workers=5) as pool:
        runs = [pool.submit(check, cmd, cards, PROFILED.get(case)) for case, cmd in cases.items()]
        return dict(zip(cases, (run.result() for run in runs)))


def test_a_client_that_does_everything_right_passes_every_check(reports: dict[str, Card]) -> None:
    report = reports["good"]
    assert report.dialect == "steve"
    # every check was exercised and passed: none was n/a for want of a fault
    assert report.outcomes == dict.fromkeys(CHECKS, "pass"), report.text
    assert report.exit_code == 0


def test_the_node_example_passes_every_check(reports: dict[str, Card]) -> None:
    report = reports["node"]
    assert report.dialect == "steve"
    # state included: the ids it wrote equal a fresh list after every fault
    assert report.outcomes == dict.fromkeys(CHECKS, "pass"), report.text
    assert report.exit_code == 0


def test_the_naive_node_example_fails(reports: dict[str, Card]) -> None:
    report = reports["node-naive"]
    # it never comes back after the first 1006 drop, and never listed, so what it holds is wrong
    assert failed(report) == {"reconnects_after_drop", "state_matches_server"}, report.text
    assert report.exit_code == 7


def test_the_node_example_reads_2_7_head_errors_sent_as_resource_change(reports: dict[str, Card]) -> None:
    """On 2.7-head the "too old" came as a resource.change with data.message (rancher/rancher#40131); the example
    recognises it (as the dashboard's workaround did), re-lists and passes every check."""
    report = reports["node-2.7-head"]
    assert report.outcomes == dict.fromkeys(CHECKS, "pass"), report.text


def test_every_check_has_a_switch() -> None:
    assert set(SWITCHES.values()) == set(CHECKS)


@pytest.mark.parametrize("switch", SWITCHES)
def test_each_switch_fails_exactly_its_own_check(reports: dict[str, Card], switch: str) -> None:
    report = reports[switch]
    assert failed(report) == {SWITCHES[switch]}, report.text
    assert report.exit_code == 7


def test_rancherlab_record_passes_every_check(reports: dict[str, Card]) -> None:
    report = reports["record"]
    assert failed(report) == set(), report.text
    outcomes = report.outcomes
    assert outcomes["state_matches_server"] == "n/a"  # it keeps a recording, not a state file
    assert all(o == "pass" for k, o in outcomes.items() if k != "state_matches_server"), report.text


def test_the_card_says_what_rancher_does_and_what_to_do(reports: dict[str, Card]) -> None:
    card = reports["--token-in-url"]
    assert card.exit_code == 7 and card.dialect == "steve"
    assert "FAIL  keeps the credential out of the URL" in card.text
    assert "do this: Send the token in an Authorization header" in card.text
    assert "Rancher: URLs end up in proxy and server access logs." in card.text


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
