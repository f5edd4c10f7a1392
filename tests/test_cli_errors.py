"""One error hierarchy and one exit-code map: the same condition exits with the same code from every command,
as one line on standard error that says what to do, never a traceback."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import rancherlab
from rancherlab.cli import EXIT_CODES, error_line, exit_code, main
from rancherlab.errors import (
    AuthenticationError,
    ClusterNotFound,
    ConnectGaveUpError,
    CredentialsError,
    DashboardURLError,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    ScopeError,
    ServerUnavailableError,
    TLSError,
    UnknownTypeError,
    UpgradeRefusedError,
    UsageError,
)
from rancherlab.har import HarError
from rancherlab.protocol import LegacyFrameError, ProtocolError, Watch
from rancherlab.recording import (
    LineTooLongError,
    RecordingCorruptError,
    RecordingExistsError,
    RecordingFormatError,
    RecordingTruncatedError,
    RecordingVersionError,
)

from .conftest import SECRET_TOKEN

ROOT = Path(__file__).resolve().parents[1]
HAR = ROOT / "tests" / "fixtures" / "rancher-two-sockets.har"
SAMPLE = ROOT / "recordings" / "samples" / "norman-project.jsonl"


def _modules() -> list[object]:
    names = [m.name for m in pkgutil.walk_packages(rancherlab.__path__, "rancherlab.")]
    return [importlib.import_module(n) for n in names if not n.endswith("__main__")]


def test_every_error_rancherlab_defines_is_a_rancherlab_error() -> None:
    found = {
        obj
        for module in _modules()
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, Exception)
        and not issubclass(obj, Warning)
        and obj.__module__.startswith("rancherlab")
        and not obj.__name__.startswith("_")  # private control flow (retry, SIGTERM), never raised to callers
    }
    assert {ProtocolError, LegacyFrameError, RecordingFormatError, HarError, UsageError} <= found
    assert [c.__name__ for c in found if not issubclass(c, RancherlabError)] == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (ScopeError("x"), 2),
        (DashboardURLError("x"), 2),
        (CredentialsError("x"), 2),
        (RecordingExistsError("x"), 2),
        (FileExistsError("x"), 2),
        (AuthenticationError("x"), 3),
        (PermissionDeniedError("x"), 3),
        (PermissionError(13, "Permission denied", "/x"), 3),
        (NotFoundError("x"), 4),
        (UnknownTypeError("x"), 4),
        (ClusterNotFound("x", cluster="c-1"), 4),
        (FileNotFoundError(2, "No such file or directory", "/x"), 4),
        (TLSError("x"), 5),
        (ConnectGaveUpError("x"), 6),
        (ProtocolError("x"), 1),
        (RecordingCorruptError("f", 3, "x"), 1),
        (RecordingTruncatedError("f", 3, "x"), 1),
        (LineTooLongError("f", 3, "x"), 1),
        (RecordingVersionError("x"), 1),
        (HarError("x"), 1),
        (UpgradeRefusedError("x"), 1),
        (ServerUnavailableError("x"), 1),
        (RuntimeError("x"), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_one_exit_code_per_condition(error: BaseException, code: int) -> None:
    assert exit_code(error) == code
    assert code in (1, *{c for _, c in EXIT_CODES})


def test_usage_errors_at_the_api_edge_are_still_value_errors() -> None:
    from rancherlab.recording import read_recording
    from rancherlab.replay import replay
    from rancherlab.replayserver import ReplayServer

    calls = [
        lambda: Watch(""),
        lambda: Watch("pod", mode="sometimes"),
        lambda: Watch("pod", debounce_ms=10),
        lambda: next(iter(replay(SAMPLE, speed=0))),
        lambda: ReplayServer(SAMPLE, speed=-1),
        lambda: read_recording(SAMPLE, max_frame_bytes=0),
    ]
    for call in calls:
        with pytest.raises(UsageError) as info:
            call()
        assert isinstance(info.value, ValueError) and exit_code(info.value) == 2


def test_an_unexpected_error_is_one_line_without_its_message() -> None:
    line = error_line(TypeError(f"something held {SECRET_TOKEN}\nsecond line"))
    assert "\n" not in line and SECRET_TOKEN not in line and "TypeError" in line and "report" in line
    assert error_line(RecordingExistsError("out.jsonl exists\n(pass overwrite=True)")).endswith(
        "--overwrite to replace it"
    )
    assert error_line(FileNotFoundError(2, "No such file or directory", "x.har")) == "No such file or directory: x.har"


def _one_line(err: str, command: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"rancherlab {command}: "), err
    return lines[0]


def test_an_existing_output_is_a_usage_error_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "exists.jsonl"
    out.write_text("keep me\n")
    assert main(["import-har", str(HAR), "--out", str(out)]) == 2
    assert "--overwrite" in _one_line(capsys.readouterr().err, "import-har")
    record = ["record", "--url", "http://127.0.0.1:9", "--scope", "global", "--token", SECRET_TOKEN, "-q"]
    assert main([*record, "--out", str(out), "--give-up-after", "1"]) == 2
    line = _one_line(capsys.readouterr().err, "record")
    assert "--overwrite" in line and SECRET_TOKEN not in line
    assert out.read_text() == "keep me\n"


@pytest.mark.parametrize("command", [["import-har", "--out", "OUT"], ["schema"], ["report", "--out", "OUT"], ["serve"]])
def test_a_missing_input_exits_4_from_every_command(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    assert main([argv[0], str(missing), *argv[1:]]) == 4
    captured = capsys.readouterr()
    assert str(missing) in _one_line(captured.err, argv[0]) and captured.out == ""


def test_serve_writes_its_errors_on_stderr_as_a_subprocess(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("this is not a recording\n")
    done = subprocess.run(
        [sys.executable, "-m", "rancherlab", "serve", str(damaged)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "not a rancherlab recording" in _one_line(done.stderr, "serve")


def test_a_damaged_recording_is_one_line_for_schema_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("this is not a recording\n")
    for argv in (["schema", str(damaged)], ["report", str(damaged), "--out", str(tmp_path / "r.html")]):
        assert main(argv) == 1
        assert "not a rancherlab recording" in _one_line(capsys.readouterr().err, argv[0])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["record", "--url", "x"], "--out"), (["serve", "x.jsonl", "--speed", "0"], "positive"), (["schema"], "FILE")],
)
def test_argument_errors_are_one_line_too(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    line = _one_line(capsys.readouterr().err, argv[0])
    assert needle in line and line.endswith(f"see 'rancherlab {argv[0]} --help'")
