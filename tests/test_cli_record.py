"""`rancherlab record` against the simulator: stop conditions, credential options, exit codes, Ctrl-C."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rancherlab.cli import main
from rancherlab.recording import read_recording
from rancherlab.simulator import Simulator

from ._stream_support import SECRET, SIM_FAST, TOKEN

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=13, rate=30, token=TOKEN, **SIM_FAST) as s:
        yield s


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RANCHER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RANCHER_CONFIG_DIR", str(tmp_path / "no-rancher-cli"))


def _token_file(tmp_path: Path, token: str = TOKEN) -> str:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    return str(path)


def test_steve_count_with_token_file(sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pods.jsonl"
    code = main(
        [
            "record",
            "--url",
            sim.url + "/v1",
            "--scope",
            "steve",
            "--type",
            "pod",
            "--type",
            "configmap",
            "--token-file",
            _token_file(tmp_path),
            "--out",
            str(out),
            "--count",
            "6",
            "--duration",
            "20",
        ]
    )
    assert code == 0
    events = list(read_recording(out))
    assert sum(e.kind == "frame" and e.name.startswith("resource.") for e in events) == 6
    assert any(e.kind == "snapshot" for e in events)
    err = capsys.readouterr().err
    assert "recorded" in err and SECRET not in err and SECRET not in out.read_text()


def test_norman_duration_with_env_credentials(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANCHER_URL", sim.url)
    monkeypatch.setenv("RANCHER_ACCESS_KEY", TOKEN.split(":")[0])
    monkeypatch.setenv("RANCHER_SECRET_KEY", SECRET)
    out = tmp_path / "global.jsonl.gz"
    begun = time.monotonic()
    assert main(["record", "--scope", "global", "--type", "cluster", "--out", str(out), "--duration", "0.6", "-q"]) == 0
    assert time.monotonic() - begun < 5
    rec = read_recording(out)
    assert rec.header.scope == "global" and any(e.is_ping for e in rec)


def test_token_from_stdin_and_pasted_subscribe_url(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(TOKEN + "\n"))
    pasted = sim.url.replace("http://", "ws://") + "/v3/subscribe?resourceTypes=node&sockId=3"
    out = tmp_path / "nodes.jsonl"
    assert main(["record", "--url", pasted, "--token-file", "-", "--out", str(out), "--duration", "0.5", "-q"]) == 0
    assert {e.type for e in read_recording(out) if e.kind == "snapshot"} == {"node"}


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--scope", "global", "--token", "token-zzzzz:wrong" + SECRET], 3, "Account & API Keys"),
        (["--scope", "global", "--type", "pods", "--token", TOKEN], 4, "camelCase"),
        (["--scope", "steve:c-nope3", "--type", "pod", "--token", TOKEN], 4, "no cluster"),
        (["--scope", "steve", "--token", TOKEN], 2, "--type"),
        (["--scope", "global", "--namespace", "x", "--token", TOKEN], 2, "only apply to Steve"),
        (["--scope", "project:p-1", "--token", TOKEN], 2, "project:<clusterId>:<projectId>"),
        (["--scope", "global", "--token", TOKEN, "--cookie", "x"], 2, "one credential"),
    ],
)
def test_exit_codes(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, needle: str
) -> None:
    assert main(["record", "--url", sim.url, "--out", str(tmp_path / "x.jsonl"), "-q", *argv]) == code
    err = capsys.readouterr().err
    assert needle in err and SECRET not in err


def test_dashboard_url_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "record",
            "--url",
            "https://r.example.com/dashboard/home",
            "--scope",
            "global",
            "--token",
            TOKEN,
            "--out",
            str(tmp_path / "x.jsonl"),
        ]
    )
    assert code == 2 and "server URL" in capsys.readouterr().err


def test_gave_up_is_6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(
        [
            "record",
            "--url",
            f"http://127.0.0.1:{port}",
            "--scope",
            "global",
            "--token",
            TOKEN,
            "--give-up-after",
            "2",
            "--out",
            str(tmp_path / "x.jsonl"),
            "-q",
        ]
    )
    assert code == 6 and "gave up" in capsys.readouterr().err


def test_tls_exit_5_and_insecure_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    with Simulator(seed=2, rate=0, token=TOKEN, certfile=str(certfile), keyfile=str(keyfile), **SIM_FAST) as tls:
        base = [
            "record",
            "--url",
            tls.url,
            "--scope",
            "global",
            "--type",
            "cluster",
            "--token",
            TOKEN,
            "-q",
            "--duration",
            "0.4",
        ]
        assert main([*base, "--out", str(tmp_path / "a.jsonl")]) == 5
        assert "--cacert" in capsys.readouterr().err
        assert main([*base, "--cacert", str(cafile), "--out", str(tmp_path / "b.jsonl")]) == 0
        # the CLI says it on stderr (warnings as errors would fail this test if it also warned)
        assert main([*base, "--insecure", "--out", str(tmp_path / "c.jsonl")]) == 0
        assert "verification is OFF" in capsys.readouterr().err


def test_ctrl_c_flushes_and_exits_0(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "ctrlc.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANCHER_")}
    env["RANCHER_CONFIG_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rancherlab",
            "record",
            "--url",
            sim.url,
            "--scope",
            "steve",
            "--type",
            "pod",
            "--token-file",
            _token_file(tmp_path),
            "--out",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 2000):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"record did not exit after Ctrl-C; stderr: {err}")
    assert proc.returncode == 0, err
    rec = read_recording(out)
    assert rec.summary is not None and rec.summary["stopped_by"] == "stop"
    assert len(list(rec)) > 3 and SECRET not in err


def test_prompts_for_the_token_without_echo_on_a_terminal(sim: Simulator, tmp_path: Path) -> None:
    """No credential anywhere and stdin a terminal: the token is asked for, typed in, not echoed, and used."""
    out = tmp_path / "prompted.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANCHER_")}
    env.update(RANCHER_CONFIG_DIR=str(tmp_path / "no-rancher-cli"), HOME=str(tmp_path))
    master, slave = os.openpty()
    try:
        # a new session: no controlling terminal, so getpass uses the pty on stdin, never the developer's terminal
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rancherlab",
                "record",
                "--url",
                sim.url,
                "--scope",
                "global",
                "--type",
                "cluster",
                "--out",
                str(out),
                "--duration",
                "0.6",
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(slave)
    shown = b""
    try:
        shown = _read_until(master, b"input hidden): ", timeout=20)
        os.write(master, TOKEN.encode() + b"\n")
        shown += _read_until(master, None, timeout=30)
        assert proc.wait(10) == 0, shown.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = shown.decode(errors="replace")
    assert "API token for" in text and "recorded" in text
    assert SECRET not in text and TOKEN not in text
    rec = read_recording(out)
    policy = rec.header.redaction
    assert isinstance(policy, dict) and policy["credentials"] >= 1 and any(e.kind == "snapshot" for e in rec)


def _read_until(fd: int, marker: bytes | None, timeout: float) -> bytes:
    """What the terminal shows until `marker` appears (None: until the other side closes)."""
    import select

    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every slave end is closed
            return got
        if not chunk:
            return got
        got += chunk
        if marker is not None and marker in got:
            return got
    if marker is not None:
        pytest.fail(f"no {marker!r} on the terminal within {timeout} s; it showed {got!r}")
    return got


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sigint_and_sigterm_end_the_recording_cleanly(sim: Simulator, tmp_path: Path, signum: int) -> None:
    """A service manager's SIGTERM ends `record` as Ctrl-C does: every event written, the summary, exit 0."""
    out = tmp_path / f"signal-{signum}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RANCHER_")}
    env["RANCHER_CONFIG_DIR"] = str(tmp_path)
    argv = ["record", "--url", sim.url, "--scope", "steve", "--type", "pod", "--type", "configmap"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rancherlab", *argv, "--token-file", _token_file(tmp_path), "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 4000):
        time.sleep(0.05)
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"record did not exit after signal {signum}; stderr: {err}")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and SECRET not in err
    rec = read_recording(out)
    events = list(rec)
    assert rec.summary is not None and rec.summary["stopped_by"] == "stop"
    said = re.search(r"recorded (\d+) events", err)
    assert said, err  # the summary line on stderr
    # nothing received was lost on the way to the file: what record counted is what the file holds
    assert int(said.group(1)) == rec.summary["events"] == len(events) > 3
