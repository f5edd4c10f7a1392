"""Credentials, their masking, and the precedence of their sources (pure: no network)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from rancherlab.credentials import (
    TLS,
    Credentials,
    CredentialsFileWarning,
    InsecureTLSWarning,
    read_token_file,
    resolve_server,
)
from rancherlab.errors import CredentialsError, UsageError

TOKEN = "token-zzzzz:Sup3rS3cretXYZ"
SECRET = "Sup3rS3cretXYZ"


def test_headers_for_each_scheme() -> None:
    assert Credentials.bearer(TOKEN).headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert Credentials.bearer(f"Bearer {TOKEN}\n").token == TOKEN
    basic = Credentials.api_key("token-zzzzz", SECRET).headers()["Authorization"]
    assert basic == "Basic " + base64.urlsafe_b64encode(TOKEN.encode()).decode()
    assert Credentials.cookie(f"R_SESS={TOKEN}").headers() == {"Cookie": f"R_SESS={TOKEN}"}


def test_url_safe_base64_with_padding() -> None:
    # '?>' encodes to '/' and '+' in standard base64; Go's URLEncoding uses '_' and '-'.
    cred = Credentials.api_key("token-a", "??>>")
    value = cred.headers()["Authorization"].split()[1]
    assert "/" not in value and "+" not in value
    assert base64.urlsafe_b64decode(value) == b"token-a:??>>"


@pytest.mark.parametrize(
    "cred",
    [
        Credentials.bearer(TOKEN),
        Credentials.api_key("token-zzzzz", SECRET),
        Credentials.cookie(TOKEN),
    ],
)
def test_repr_masks_the_secret(cred: Credentials) -> None:
    for text in (repr(cred), str(cred), f"{cred}", repr([cred])):
        assert SECRET not in text
        assert "token-zz…" in text
    assert SECRET in cred.secrets()
    assert TOKEN in cred.secrets()


def test_server_repr_masks_the_secret() -> None:
    server = resolve_server("https://r.example.com", TOKEN, env={}, cli_config=False)
    assert SECRET not in repr(server)


def test_bad_credentials_teach() -> None:
    with pytest.raises(CredentialsError, match="Account & API Keys"):
        Credentials.bearer("")
    with pytest.raises(CredentialsError, match="both"):
        Credentials.api_key("token-a", "")


def _cli2(tmp_path: Path, url: str, token: str = TOKEN, *, mode: int = 0o600, **extra: str) -> Path:
    path = tmp_path / "cli2.json"
    path.write_text(
        json.dumps(
            {
                "Servers": {
                    "rancherDefault": {
                        "url": url,
                        "tokenKey": token,
                        "accessKey": token.split(":")[0],
                        "secretKey": token.split(":")[1],
                        "project": "c-1:p-1",
                        **extra,
                    }
                },
                "CurrentServer": "rancherDefault",
            }
        )
    )
    os.chmod(path, mode)
    return path


def test_precedence_arguments_env_cli(tmp_path: Path) -> None:
    cli = _cli2(tmp_path, "https://cli.example.com/v3", "token-cli:c")
    env = {"RANCHER_URL": "https://env.example.com", "RANCHER_TOKEN_KEY": "token-env:e"}
    got = resolve_server("https://arg.example.com", "token-arg:a", env=env, cli_config=cli)
    assert (got.base, got.credentials, got.source) == (
        "https://arg.example.com",
        Credentials.bearer("token-arg:a"),
        "arguments",
    )
    got = resolve_server(env=env, cli_config=cli)
    assert (got.base, got.credentials, got.source) == (
        "https://env.example.com",
        Credentials.bearer("token-env:e"),
        "environment",
    )
    got = resolve_server(env={}, cli_config=cli)
    assert got.base == "https://cli.example.com"
    assert got.credentials == Credentials.bearer("token-cli:c")
    assert got.source.startswith("cli2.json")


def test_url_never_paired_with_another_servers_credential(tmp_path: Path) -> None:
    cli = _cli2(tmp_path, "https://cli.example.com/v3", "token-cli:c")
    env = {"RANCHER_URL": "https://env.example.com", "RANCHER_TOKEN_KEY": "token-env:e"}
    # A URL argument borrows a credential only from a source naming the same server.
    assert resolve_server("https://other.example.com", env=env, cli_config=cli).credentials is None
    assert resolve_server("https://env.example.com/v3", env=env, cli_config=cli).credentials == Credentials.bearer(
        "token-env:e"
    )
    got = resolve_server("wss://cli.example.com/v3/subscribe", env=env, cli_config=cli)
    assert got.credentials == Credentials.bearer("token-cli:c")
    # Environment credentials without RANCHER_URL never go to cli2.json's server.
    got = resolve_server(env={"RANCHER_TOKEN_KEY": "token-env:e"}, cli_config=cli)
    assert got.credentials == Credentials.bearer("token-cli:c")
    # A credential argument without a URL is refused.
    with pytest.raises(CredentialsError, match="without the server URL"):
        resolve_server(None, TOKEN, env=env, cli_config=cli)
    with pytest.raises(CredentialsError, match="no Rancher server URL"):
        resolve_server(env={}, cli_config=False)


def test_env_access_and_secret_keys() -> None:
    env = {"RANCHER_URL": "https://e.example.com", "RANCHER_ACCESS_KEY": "token-zzzzz", "RANCHER_SECRET_KEY": SECRET}
    assert resolve_server(env=env, cli_config=False).credentials == Credentials.api_key("token-zzzzz", SECRET)
    with pytest.raises(CredentialsError, match="RANCHER_SECRET_KEY is not set"):
        resolve_server(env={"RANCHER_URL": "https://e", "RANCHER_ACCESS_KEY": "token-zzzzz"}, cli_config=False)


def test_tls_settings_follow_their_source(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    env = {
        "RANCHER_URL": "https://e.example.com",
        "RANCHER_TOKEN_KEY": TOKEN,
        "RANCHER_CA_CERTS": pem,
        "RANCHER_INSECURE": "true",
    }
    got = resolve_server(env=env, cli_config=False)
    assert got.tls == TLS(pem, True)
    cli = _cli2(tmp_path, "https://c.example.com", cacert=pem)
    assert resolve_server(env={}, cli_config=cli).tls.ca_pem == pem
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(pem)
    assert resolve_server("https://a.example.com", TOKEN, cacert=ca_file, env={}, cli_config=False).tls.ca_pem == pem
    with pytest.raises(UsageError, match="cannot read the CA file"):
        resolve_server("https://a.example.com", TOKEN, cacert=tmp_path / "missing.pem", env={}, cli_config=False)


def test_insecure_warns() -> None:
    with pytest.warns(InsecureTLSWarning, match="anyone on the network"):
        TLS(insecure=True).ssl_context()


def test_readable_cli_config_warns(tmp_path: Path) -> None:
    cli = _cli2(tmp_path, "https://c.example.com", mode=0o644)
    with pytest.warns(CredentialsFileWarning, match="chmod 600"):
        resolve_server(env={}, cli_config=cli)


def test_rancher_config_dir_env(tmp_path: Path) -> None:
    _cli2(tmp_path, "https://c.example.com")
    got = resolve_server(env={"RANCHER_CONFIG_DIR": str(tmp_path)})
    assert got.base == "https://c.example.com"


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert read_token_file(path) == TOKEN
    path.write_text("\n")
    with pytest.raises(CredentialsError, match="empty"):
        read_token_file(path)
