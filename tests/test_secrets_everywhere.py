"""No public object's repr, no error message and no recording holds a credential, however it was given.

Each way of giving a credential (argument, Authorization header, R_SESS cookie, URL user info, URL query parameter,
token file) gets its own distinctive token, and every face that can receive it (Python API, CLI) is checked: the
reprs and strs of what it returns, the messages of what it raises, and the recordings it writes.
"""

from __future__ import annotations

import base64
import io
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rancherlab as rl
from rancherlab.cli import main
from rancherlab.credentials import TLS, Credentials, read_token_file, resolve_server
from rancherlab.errors import CredentialsError, RancherlabError
from rancherlab.recording import RecordingHeader
from rancherlab.rest import RestClient
from rancherlab.scope import URLParameterWarning, parse_server_url

pytestmark = pytest.mark.timeout(60)

# One distinctive credential per way of giving it (access key, colon, secret). The hyphens keep them from looking
# like a real Rancher key to the committed-secrets guard (tests/test_no_committed_secrets.py).
ARGUMENT = "token-arg7k:Argument-S3cret-only-here-0123456789-abcdefghijklmn"
HEADER = "token-hdr7k:Header-S3cret-only-here-0123456789-abcdefghijklmnop"
COOKIE = "token-ck7k2:Cookie-S3cret-only-here-0123456789-abcdefghijklmnop"
USERINFO = "token-usr7k:UserInfo-S3cret-only-here-0123456789-abcdefghijklm"
QUERY = "token-qry7k:Query-S3cret-only-here-0123456789-abcdefghijklmnopq"
FILE = "token-fil7k:File-S3cret-only-here-0123456789-abcdefghijklmnopqr"
ALL = (ARGUMENT, HEADER, COOKIE, USERINFO, QUERY, FILE)
FAST: dict[str, Any] = {"env": {}, "cli_config": False, "liveness": 3.0, "backoff_initial": 0.05, "backoff_max": 0.2}


def forms(token: str) -> list[str]:
    """Every text that would reveal `token`: whole, its secret half, base64 and URL-safe base64, URL-quoted."""
    secret = token.split(":", 1)[1]
    raw = token.encode()
    return [
        token,
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        token.replace(":", "%3A"),
    ]


def leaks(text: str, tokens: tuple[str, ...] = ALL) -> list[str]:
    return [f[:16] for t in tokens for f in forms(t) if f in text]


def shown(obj: Any) -> str:
    return repr(obj) + "\n" + str(obj)


def error_text(exc: BaseException) -> str:
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc!s} {exc!r} {exc.args!r}")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "\n".join(parts)


# --- public objects built from each way of giving a credential ---------------------------------------------------


def credential_objects() -> Iterator[tuple[str, Any]]:
    yield "bearer argument", Credentials.bearer(ARGUMENT)
    yield "Authorization header value", Credentials.bearer(f"Bearer {HEADER}")
    yield "cookie", Credentials.cookie(f"R_SESS={COOKIE}")
    access, secret = USERINFO.split(":")
    yield "api key", Credentials.api_key(access, secret)
    yield "server from an argument", resolve_server("https://r.example.com", ARGUMENT, env={}, cli_config=False)
    yield "server from user info", resolve_server(f"https://{USERINFO}@r.example.com/v3", env={}, cli_config=False)
    env = {"RANCHER_URL": "https://r.example.com", "RANCHER_TOKEN_KEY": FILE}
    yield "server from the environment", resolve_server(env=env, cli_config=False)
    with pytest.warns(URLParameterWarning):
        yield "URL with a query token", parse_server_url(f"wss://r.example.com/v3/subscribe?token={QUERY}")
    yield "URL with user info", parse_server_url(f"wss://{USERINFO}@r.example.com/v3/subscribe")
    yield "TLS", TLS.from_options(None, False)
    yield "redactor", rl.Redactor(credentials=list(ALL))
    yield (
        "recording header",
        RecordingHeader.from_url(
            f"wss://{USERINFO}@r.example.com/v3/subscribe?token={QUERY}", redaction=rl.Redactor(credentials=[ARGUMENT])
        ),
    )


@pytest.mark.parametrize(("what", "obj"), list(credential_objects()), ids=[w for w, _ in credential_objects()])
def test_reprs_hold_no_credential(what: str, obj: Any) -> None:
    assert not leaks(shown(obj)), what
    if isinstance(obj, RecordingHeader):
        assert not leaks(str(obj.to_json()))


def test_simulator_and_its_config_hide_the_token() -> None:
    sim = rl.Simulator(token=ARGUMENT, rate=0)
    assert not leaks(shown(sim) + shown(sim.config) + str(vars(sim.config)).replace(ARGUMENT, "")), "repr"
    assert sim.token == ARGUMENT and sim.config.token == ARGUMENT  # still there for whoever asks by name
    with sim:
        assert not leaks(shown(sim) + shown(sim.config))


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda: Credentials.bearer(ARGUMENT + " trailing"), "whitespace"),
        (lambda: Credentials("basic", ARGUMENT.split(":")[1]), "basic without access key"),
        (lambda: Credentials("nonsense", ARGUMENT), "unknown scheme"),  # type: ignore[arg-type]
        (lambda: resolve_server(None, ARGUMENT, env={}, cli_config=False), "credential without URL"),
        (lambda: parse_server_url(f"https://{USERINFO}@r.example.com/dashboard?token={QUERY}"), "dashboard URL"),
        (lambda: parse_server_url(f"https://{USERINFO}@r.example.com:99999/v3?token={QUERY}"), "bad port"),
        (lambda: parse_server_url(f"ftp://{USERINFO}@r.example.com/v3?token={QUERY}"), "bad scheme"),
        (lambda: parse_server_url(f"https://r.example.com/meta/subscribe?R_SESS={COOKIE}"), "meta endpoint"),
        (lambda: read_token_file(FILE), "the token given where its file belongs"),
        (lambda: read_token_file(f"/no/such/dir/{FILE}"), "a path ending in the token"),
        (lambda: read_token_file(f"Bearer {HEADER}"), "a header value given as the file"),
    ],
)
def test_error_messages_hold_no_credential(make: Any, what: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", URLParameterWarning)
        with pytest.raises((RancherlabError, ValueError)) as err:
            make()
    assert not leaks(error_text(err.value)), what


def test_a_token_given_as_the_token_file_is_refused_without_repeating_it() -> None:
    with pytest.raises(CredentialsError, match="looks like the token itself") as err:
        read_token_file(FILE)
    assert "RANCHER_TOKEN_KEY" in str(err.value)
    with pytest.raises(CredentialsError, match="'/no/such/file.txt'"):  # an ordinary path is still named
        read_token_file("/no/such/file.txt")


# --- live: captures and recordings against the simulator ----------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[rl.Simulator]:
    with rl.Simulator(seed=5, token=ARGUMENT, rate=20, norman_ping=0.2, steve_ping=0.2) as s:
        yield s


def _record(sim: rl.Simulator, url: str, path: Path, **kwargs: Any) -> rl.Capture:
    cap = rl.capture(url, "global", types=["user", "token"], duration=0.8, record=path, **FAST, **kwargs)
    cap.wait(20)
    return cap


def test_each_way_of_giving_the_credential_leaves_no_trace(sim: rl.Simulator, tmp_path: Path) -> None:
    access, secret = ARGUMENT.split(":")
    ways: list[tuple[str, str, dict[str, Any]]] = [
        ("argument", sim.url, {"credentials": ARGUMENT}),
        ("Authorization header value", sim.url, {"credentials": Credentials.bearer(f"Bearer {ARGUMENT}")}),
        ("cookie", sim.url, {"credentials": Credentials.cookie(f"R_SESS={ARGUMENT}")}),
        ("URL user info", sim.url.replace("http://", f"http://{access}:{secret}@"), {}),
    ]
    for what, url, kwargs in ways:
        path = tmp_path / f"{what.replace(' ', '-')}.jsonl"
        cap = _record(sim, url, path, **kwargs)
        assert cap.stats.events > 0, what  # it authenticated and captured
        text = path.read_text() + shown(cap) + shown(cap.stream) + "".join(shown(e) for e in cap.events)
        assert "<redacted" in text.replace("\\u003c", "<"), what  # the token objects' values were there to hide
        assert not leaks(text, (ARGUMENT,)), what


def test_a_query_token_is_never_sent_stored_or_shown(sim: rl.Simulator, tmp_path: Path) -> None:
    path = tmp_path / "query.jsonl"
    with pytest.warns(URLParameterWarning, match="reads no credential from the URL") as record:
        cap = _record(sim, sim.url + f"/v3/subscribe?token={QUERY}", path, credentials=ARGUMENT)
    assert cap.stats.events > 0
    text = path.read_text() + shown(cap) + shown(cap.stream) + " ".join(str(w.message) for w in record)
    assert not leaks(text, (QUERY, ARGUMENT))


def test_cli_record_with_a_token_file_and_a_pasted_url(
    sim: rl.Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ARGUMENT + "\n")
    out = tmp_path / "cli.jsonl"
    pasted = sim.url.replace("http://", "ws://") + f"/v3/subscribe?resourceTypes=user&sockId=1&token={QUERY}"
    argv = ["record", "--url", pasted, "--token-file", str(token_file), "--out", str(out), "--duration", "0.5"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", URLParameterWarning)
        assert main(argv) == 0
    captured = capsys.readouterr()
    assert not leaks(out.read_text() + captured.out + captured.err, (ARGUMENT, QUERY))
    # the token itself where the file belongs: refused, and not repeated on stderr
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["record", "--url", sim.url, "--scope", "global", "--token-file", FILE, "--out", str(out) + "2"])
    captured = capsys.readouterr()
    assert code != 0 and not leaks(captured.out + captured.err, (FILE,))
    assert "looks like the token itself" in captured.err


def test_recordings_and_the_replay_server_built_on_them(sim: rl.Simulator, tmp_path: Path) -> None:
    path = tmp_path / "replayed.jsonl"
    _record(sim, sim.url.replace("http://", f"http://{ARGUMENT}@"), path)
    recording = rl.read_recording(path)
    server = rl.ReplayServer(path, token=HEADER, speed=100)
    text = shown(recording) + shown(recording.header) + shown(server) + shown(server.options)
    with server:
        text += shown(server)
    assert not leaks(text, (ARGUMENT, HEADER))


def test_rest_client_repr(sim: rl.Simulator) -> None:
    client = RestClient(resolve_server(sim.url, ARGUMENT, env={}, cli_config=False))
    assert not leaks(shown(client), (ARGUMENT,))
