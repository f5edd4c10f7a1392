"""Nothing committed carries a real credential: no Rancher token, no private key, no unredacted secret in the samples.

The samples and fixtures are made from the simulator and from public sources, and recordings are redacted when they
are written; this guard catches the day someone commits a real capture, a pasted token or a key by mistake.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from rancherlab.protocol import Event
from rancherlab.recording import read_recording

from .conftest import SECRET_TOKEN

ROOT = Path(__file__).resolve().parents[1]

# Rancher's API keys are `token-<5>:<secret>`; real secrets are lower case, matched in any case to catch more.
TOKEN = re.compile(r"token-[a-z0-9]{5}:[a-z0-9]{40,}", re.IGNORECASE)
# The deliberately fake tokens the tests use, distinctive so that finding them where they must not be is obvious.
FAKE_TOKENS = frozenset(
    {
        SECRET_TOKEN,  # tests/conftest.py, and the HAR fixture
        "token-c00k1:Ck9CookieSessionSecretValue0123456789abcdefghijkl",  # the HAR fixture's session cookie
    }
)
# A PEM private key with a body: the header, then (raw or JSON-escaped) line breaks and base64.
PEM_WITH_BODY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:\s|\\[nr])*[A-Za-z0-9+/=]{32,}")
# Files allowed to hold a fake private key with a body (none today: the simulator makes its keys at run time and
# the tests only look at the header). Add a path here, with a reason, only for a deliberate fake.
FAKE_PEM_FILES: frozenset[str] = frozenset()

PLACEHOLDER = "<redacted len="
AUTH_VALUE = re.compile(r"authorization\W{0,8}(?:bearer|basic)\s+(?!<redacted)[^\s\"'<]", re.IGNORECASE)
SESSION_VALUE = re.compile(r"R_SESS=(?!<redacted)[^\s;\"'<]")
# Norman's secret-holding types and their secret fields (`*`: any key), as rancherlab's redaction treats them.
NORMAN_SECRET_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "namespacedSecret": (("data", "*"), ("stringData", "*")),
    "namespacedBasicAuth": (("password",),),
    "namespacedCertificate": (("key",),),
    "namespacedDockerCredential": (("registries", "*", "password"), ("registries", "*", "auth")),
    "namespacedSshAuth": (("privateKey",),),
}
STEVE_SECRET_FIELDS: tuple[tuple[str, ...], ...] = (("data", "*"), ("stringData", "*"))


def tracked_files() -> list[Path]:
    """Every file git tracks; without git the guard cannot know what is committed, so it fails rather than skip."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is not on PATH: this test scans `git ls-files` and cannot run without it")
    done = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"`git ls-files` failed ({done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    names = [n for n in done.stdout.decode().split("\0") if n]
    assert names, "git lists no files"
    return [ROOT / n for n in names if (ROOT / n).is_file()]  # a tracked file deleted in the work tree is not there


def text_of(path: Path) -> str | None:
    """A tracked file's text (gzip opened), or None for a binary one."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    out = {}
    for path in tracked_files():
        text = text_of(path)
        if text is not None:
            out[path.relative_to(ROOT).as_posix()] = text
    return out


def test_no_rancher_token_is_committed(texts: dict[str, str]) -> None:
    found = {
        (name, m.group()) for name, text in texts.items() for m in TOKEN.finditer(text) if m.group() not in FAKE_TOKENS
    }
    assert not found, f"token-shaped strings (add a deliberate fake to FAKE_TOKENS): {sorted(found)}"


def test_the_fake_tokens_are_still_used() -> None:
    """An allow-list entry nobody needs any more would let that exact token slip in later."""
    committed = "\n".join(t for p in tracked_files() if p != Path(__file__).resolve() and (t := text_of(p)) is not None)
    assert all(token in committed for token in FAKE_TOKENS)


def test_no_private_key_is_committed(texts: dict[str, str]) -> None:
    found = sorted(name for name, text in texts.items() if PEM_WITH_BODY.search(text) and name not in FAKE_PEM_FILES)
    assert not found, f"PEM private keys with a body: {found}"


def test_the_pem_pattern_finds_keys_in_every_form() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    assert PEM_WITH_BODY.search(f"-----BEGIN PRIVATE KEY-----\n{body}\n")
    assert PEM_WITH_BODY.search(f'"key":"-----BEGIN RSA PRIVATE KEY-----\\n{body}\\n"')
    assert not PEM_WITH_BODY.search('startswith(b"-----BEGIN PRIVATE KEY-----\\n")')


# ----------------------------------------------------------------------------------------------- samples


def samples() -> list[Path]:
    found = sorted(
        p for p in tracked_files() if p.parent == ROOT / "recordings" / "samples" and re.search(r"\.jsonl", p.name)
    )
    assert found, "no committed sample recordings under recordings/samples"
    return found


def values_at(obj: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield obj
        return
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        for key in obj if head == "*" else [head] if head in obj else []:
            yield from values_at(obj[key], rest)
    elif isinstance(obj, list) and head == "*":
        for item in obj:
            yield from values_at(item, rest)


def unredacted(obj: Any, fields: tuple[tuple[str, ...], ...]) -> list[Any]:
    return [
        v for path in fields for v in values_at(obj, path) if not (isinstance(v, str) and v.startswith(PLACEHOLDER))
    ]


def objects_of(event: Event) -> Iterator[Any]:
    """The object an event carries, both as parsed and as its raw text says (the bytes a replay sends)."""
    yield event.data
    if event.raw and event.kind == "frame":
        yield json.loads(event.raw).get("data")


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.mark.parametrize("path", samples(), ids=lambda p: p.name)
def test_samples_are_redacted_and_from_loopback(path: Path) -> None:
    recording = read_recording(path)
    assert is_loopback(recording.header.server), recording.header.server
    secrets = 0
    for event in recording:
        text = json.dumps([event.raw, event.data, dict(event.info), event.watch], default=str)
        assert not AUTH_VALUE.search(text) and not SESSION_VALUE.search(text), f"credential in {event!r}"
        assert not TOKEN.search(text), f"token in {event!r}"
        if event.kind == "marker" and "endpoint" in event.info:
            assert is_loopback(str(event.info["endpoint"])), event.info
        if not event.is_resource:
            continue
        fields = (
            STEVE_SECRET_FIELDS
            if recording.dialect == "steve" and event.type == "secret"
            else NORMAN_SECRET_FIELDS.get(event.type or "")
            if recording.dialect == "norman"
            else None
        )
        if not fields:
            continue
        secrets += 1
        for obj in objects_of(event):
            assert not unredacted(obj, fields), f"unredacted secret values in {event!r}"
    if recording.dialect == "steve":
        assert secrets, "the Steve sample watches secrets: the check above must have had something to check"


def test_the_secret_check_sees_an_unredacted_value() -> None:
    assert unredacted({"data": {"a": "<redacted len=3 hmac=abcdefabcdef>", "b": "c2VjcmV0"}}, STEVE_SECRET_FIELDS) == [
        "c2VjcmV0"
    ]
    assert unredacted(
        {"registries": {"r": {"password": "hunter2"}}}, NORMAN_SECRET_FIELDS["namespacedDockerCredential"]
    )
    assert AUTH_VALUE.search('{"Authorization": "Bearer token-abcde:xyz"}') and SESSION_VALUE.search(
        "Cookie: R_SESS=abc"
    )
    assert AUTH_VALUE.search(json.dumps('{"Authorization": "Basic dXNlcjpwdw=="}'))  # inside a raw frame's text
    assert not AUTH_VALUE.search('"Authorization": "Bearer <redacted len=5 hmac=abcdefabcdef>"')
    assert not is_loopback("https://rancher.example.com") and is_loopback("http://[::1]:80")
