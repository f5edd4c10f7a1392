"""How to authenticate and whom to trust: credentials, TLS settings, and where they come from.

Sources, in precedence order: arguments, the environment (the Rancher Terraform provider's variables
`RANCHER_URL`, `RANCHER_TOKEN_KEY`, `RANCHER_ACCESS_KEY`/`RANCHER_SECRET_KEY`, `RANCHER_CA_CERTS`,
`RANCHER_INSECURE`), then the Rancher CLI's `~/.rancher/cli2.json`. A URL from one source is never
paired with a credential from another: sending the token of server A to server B would leak it.

Masking: a `Credentials` shows its scheme and at most the first 8 characters of the access key
(`Credentials(bearer token-ab…)`), never anything after the colon. The access key names the key in the
Rancher UI; the secret is the part that authenticates.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from .errors import TOKEN_HELP, CredentialsError, UsageError
from .scope import ServerURL, parse_server_url

Scheme = Literal["bearer", "basic", "cookie"]

ENV_URL: Final = "RANCHER_URL"
ENV_TOKEN: Final = "RANCHER_TOKEN_KEY"
ENV_ACCESS_KEY: Final = "RANCHER_ACCESS_KEY"
ENV_SECRET_KEY: Final = "RANCHER_SECRET_KEY"
ENV_CA_CERTS: Final = "RANCHER_CA_CERTS"
ENV_INSECURE: Final = "RANCHER_INSECURE"
ENV_CONFIG_DIR: Final = "RANCHER_CONFIG_DIR"  # the Rancher CLI's own override of ~/.rancher
_MASK_CHARS: Final = 8
_TRUE: Final = frozenset({"1", "true", "yes", "on", "y", "t"})


class InsecureTLSWarning(UserWarning):
    """TLS verification was turned off: anyone on the path can read the token."""


class CredentialsFileWarning(UserWarning):
    """A file holding credentials can be read by other users."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """One credential. `headers()` is the only way its secret leaves the object."""

    scheme: Scheme
    token: str = field(repr=False)  # `token-xxxxx:<secret>` (or a session token / JWT)

    def __post_init__(self) -> None:
        if self.scheme not in ("bearer", "basic", "cookie"):
            raise CredentialsError(f"unknown credential scheme {self.scheme!r}: use bearer, basic or cookie")
        if not self.token or any(c.isspace() for c in self.token):
            raise CredentialsError(f"the {self.scheme} credential is empty or contains whitespace. {TOKEN_HELP}")
        if self.scheme == "basic" and ":" not in self.token:
            raise CredentialsError("an API key needs both halves: access key (token-xxxxx) and secret key")

    @classmethod
    def bearer(cls, token: str) -> Credentials:
        """An API token `token-xxxxx:<secret>`, sent as `Authorization: Bearer`; a pasted 'Bearer ' is removed."""
        text = token.strip()
        if text[:7].lower() == "bearer ":
            text = text[7:].strip()
        return cls("bearer", text)

    @classmethod
    def api_key(cls, access_key: str, secret_key: str) -> Credentials:
        """Access key + secret key, sent as `Authorization: Basic` (Go's URL-safe base64 with padding)."""
        access, secret = access_key.strip(), secret_key.strip()
        if not access or not secret:
            raise CredentialsError("an API key needs both the access key (token-xxxxx) and the secret key")
        return cls("basic", f"{access}:{secret}")

    @classmethod
    def cookie(cls, value: str) -> Credentials:
        """A browser session: the `R_SESS` cookie, which Rancher reads only when no Authorization is sent."""
        text = value.strip()
        text = text.removeprefix("R_SESS=")
        return cls("cookie", text)

    @property
    def access_key(self) -> str | None:
        key, sep, _ = self.token.partition(":")
        return key if sep else None

    def headers(self) -> dict[str, str]:
        """The handshake/REST headers that carry this credential."""
        if self.scheme == "bearer":
            return {"Authorization": f"Bearer {self.token}"}
        if self.scheme == "basic":
            return {"Authorization": "Basic " + base64.urlsafe_b64encode(self.token.encode()).decode("ascii")}
        return {"Cookie": f"R_SESS={self.token}"}

    def secrets(self) -> tuple[str, ...]:
        """Every string that would reveal the secret; the redactor masks these wherever they appear."""
        out = {
            self.token,
            base64.urlsafe_b64encode(self.token.encode()).decode("ascii"),
            base64.b64encode(self.token.encode()).decode("ascii"),
        }
        _, sep, secret = self.token.partition(":")
        if sep and secret:
            out.add(secret)
        return tuple(sorted(out, key=len, reverse=True))

    @property
    def masked(self) -> str:
        key = self.access_key
        if key is None:
            return "…"
        return (key[:_MASK_CHARS] + "…") if len(key) > _MASK_CHARS else f"{key}:…"

    def __repr__(self) -> str:
        return f"Credentials({self.scheme} {self.masked})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class TLS:
    """Whom to trust: the system store by default, a given CA (PEM text), or nobody (`insecure`)."""

    ca_pem: str | None = field(default=None, repr=False)
    insecure: bool = False

    @classmethod
    def from_options(cls, cacert: str | os.PathLike[str] | None = None, insecure: bool = False) -> TLS:
        """`cacert` is a file path or the PEM text itself (as `RANCHER_CA_CERTS` and cli2.json hold it)."""
        return cls(load_ca(cacert) if cacert else None, bool(insecure))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context; `insecure` warns, because the token then goes to whoever answers."""
        if self.insecure:
            warnings.warn(
                "TLS verification is OFF (insecure): the server is not authenticated and anyone on the network path "
                "can read your token. Prefer --cacert with the CA that signed Rancher's certificate.",
                InsecureTLSWarning,
                stacklevel=3,
            )
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self.ca_pem:
            try:
                return ssl.create_default_context(cadata=self.ca_pem)
            except ssl.SSLError as exc:
                raise UsageError(
                    f"the CA certificate given is not valid PEM ({exc.reason}); pass the CA's PEM file"
                ) from None
        return ssl.create_default_context()


def load_ca(cacert: str | os.PathLike[str]) -> str:
    """PEM text from a path or from the text itself."""
    text = os.fspath(cacert)
    if "-----BEGIN" in text:
        return text
    try:
        pem = Path(text).expanduser().read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the CA file {text!r}: {exc.strerror}; pass a PEM file or the PEM text") from None
    if "-----BEGIN" not in pem:
        raise UsageError(f"{text!r} holds no PEM certificate (no '-----BEGIN CERTIFICATE-----' line)")
    return pem


@dataclass(frozen=True, slots=True)
class Server:
    """A server with the credential and TLS settings that belong to it, and where they came from."""

    url: ServerURL
    credentials: Credentials | None
    tls: TLS = TLS()
    source: str = "arguments"

    @property
    def base(self) -> str:
        return self.url.base

    def ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.ssl_context() if self.url.secure else None

    def headers(self) -> dict[str, str]:
        return self.credentials.headers() if self.credentials else {}


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    url: ServerURL | None
    credentials: Credentials | None
    ca: str | None
    insecure: bool


def resolve_server(
    url: str | ServerURL | None = None,
    credentials: Credentials | str | None = None,
    *,
    cacert: str | os.PathLike[str] | None = None,
    insecure: bool | None = None,
    env: Mapping[str, str] | None = None,
    cli_config: str | os.PathLike[str] | Literal[False] | None = None,
) -> Server:
    """Find the server, its credential and its TLS settings: arguments, then environment, then cli2.json.

    With a URL argument and no credential argument, only a source whose URL is the same server lends its
    credential. A credential argument without a URL is refused rather than sent to whatever server some
    other source names. `cli_config=False` skips the Rancher CLI file; a string/path points at another one.
    A str `credentials` is a bearer token.
    """
    environ = os.environ if env is None else env
    arg_url = url if isinstance(url, ServerURL) else (parse_server_url(url) if url else None)
    arg_cred = Credentials.bearer(credentials) if isinstance(credentials, str) else credentials
    if arg_cred is None and arg_url is not None and arg_url.userinfo:
        arg_cred = Credentials.api_key(*arg_url.userinfo)
    others = [s for s in (_from_env(environ), _from_cli_config(cli_config, environ)) if s is not None]

    chosen: _Source
    if arg_url is not None:
        chosen = _Source("arguments", arg_url, arg_cred, None, False)
        if arg_cred is None:
            for src in others:
                if src.url is not None and src.url.base == arg_url.base and src.credentials is not None:
                    chosen = _Source(src.name, arg_url, src.credentials, src.ca, src.insecure)
                    break
    elif arg_cred is not None:
        raise CredentialsError(
            "a credential was given without the server URL; pass the URL too (rancherlab never sends a credential "
            "to a server named by another source)"
        )
    else:
        with_url = [s for s in others if s.url is not None]
        if not with_url:
            raise CredentialsError(
                "no Rancher server URL: pass url=/--url, set RANCHER_URL (with RANCHER_TOKEN_KEY), or log in once with "
                "the Rancher CLI (~/.rancher/cli2.json)"
            )
        chosen = with_url[0]
        if chosen.credentials is None:
            for src in with_url[1:]:
                if src.url is not None and chosen.url is not None and src.url.base == chosen.url.base:
                    chosen = _Source(chosen.name, chosen.url, src.credentials, chosen.ca or src.ca, chosen.insecure)
                    break
    assert chosen.url is not None
    tls = TLS(
        load_ca(cacert) if cacert else (load_ca(chosen.ca) if chosen.ca else None),
        bool(insecure) if insecure is not None else chosen.insecure,
    )
    return Server(chosen.url, chosen.credentials, tls, chosen.name)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def _from_env(env: Mapping[str, str]) -> _Source | None:
    raw_url = env.get(ENV_URL, "").strip()
    token = env.get(ENV_TOKEN, "").strip()
    access, secret = env.get(ENV_ACCESS_KEY, "").strip(), env.get(ENV_SECRET_KEY, "").strip()
    cred: Credentials | None = None
    if token:
        cred = Credentials.bearer(token)
    elif access or secret:
        if not (access and secret):
            missing = ENV_SECRET_KEY if access else ENV_ACCESS_KEY
            raise CredentialsError(f"{ENV_ACCESS_KEY} and {ENV_SECRET_KEY} go together; {missing} is not set")
        cred = Credentials.api_key(access, secret)
    if not raw_url and cred is None:
        return None
    return _Source(
        "environment",
        parse_server_url(raw_url) if raw_url else None,
        cred,
        env.get(ENV_CA_CERTS) or None,
        _truthy(env.get(ENV_INSECURE)),
    )


def cli_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$RANCHER_CONFIG_DIR/cli2.json`, else `~/.rancher/cli2.json` (the Rancher CLI's own rule)."""
    environ = os.environ if env is None else env
    base = environ.get(ENV_CONFIG_DIR)
    return (Path(base).expanduser() if base else Path.home() / ".rancher") / "cli2.json"


def _from_cli_config(path: str | os.PathLike[str] | Literal[False] | None, env: Mapping[str, str]) -> _Source | None:
    if path is False:
        return None
    file = Path(path).expanduser() if path is not None else cli_config_path(env)
    try:
        text = file.read_text()
        mode = file.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read the Rancher CLI config {file.name!r}: {exc.strerror}") from None
    if sys.platform != "win32" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"{file.name} can be read by other users and holds credentials; run: chmod 600 {file}",
            CredentialsFileWarning,
            stacklevel=3,
        )
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(
            f"the Rancher CLI config {file.name!r} is not JSON ({exc.msg}, line {exc.lineno})"
        ) from None
    servers = doc.get("Servers") if isinstance(doc, dict) else None
    current = doc.get("CurrentServer") if isinstance(doc, dict) else None
    if not isinstance(servers, dict) or not servers:
        return None
    entry = servers.get(current) if isinstance(current, str) else None
    if entry is None:
        if len(servers) != 1:
            return None  # several servers and none current: guessing could send a token to the wrong one
        current, entry = next(iter(servers.items()))
    if not isinstance(entry, dict) or not entry.get("url"):
        return None
    cred: Credentials | None = None
    if entry.get("tokenKey"):
        cred = Credentials.bearer(str(entry["tokenKey"]))
    elif entry.get("accessKey") and entry.get("secretKey"):
        cred = Credentials.api_key(str(entry["accessKey"]), str(entry["secretKey"]))
    return _Source(
        f"cli2.json (server {current!r})", parse_server_url(str(entry["url"])), cred, entry.get("cacert") or None, False
    )


def read_token_file(path: str | os.PathLike[str]) -> str:
    """A token from a file, or from stdin for `-`; surrounding whitespace and newlines are dropped.

    Raises `CredentialsError` for a file that cannot be read or is empty. A "path" that is the token itself
    (`--token-file token-xxxxx:<secret>`) is refused without being repeated: the message would put it in a
    terminal, a log or a notebook.
    """
    if os.fspath(path) == "-":
        text = sys.stdin.readline()
    else:
        problem = None
        try:
            text = Path(path).expanduser().read_text()
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
        if problem is not None:  # raised out here: the OSError, which names the path, is not kept as context
            raise CredentialsError(f"cannot read the token file {_shown_path(path)}: {problem}")
    token = text.strip()
    if not token:
        raise CredentialsError(f"the token file {_shown_path(path)} is empty. {TOKEN_HELP}")
    return token


def _shown_path(path: str | os.PathLike[str]) -> str:
    """A token file's path for a message, unless it looks like a credential pasted in its place."""
    text = os.fspath(path)
    if _looks_like_token(text):
        return (
            "(not shown: it looks like the token itself, not a file; put the token in a file, or use "
            f"{ENV_TOKEN} or ~/.rancher/cli2.json)"
        )
    return repr(text)


def _looks_like_token(text: str) -> bool:
    if text.startswith(("token-", "Bearer ", "bearer ", "R_SESS=", "kubeconfig-u-")):
        return True
    name = os.path.basename(text)
    # Rancher's secret keys are 54 characters of [a-z0-9]; a JWT has two dots; a file name rarely has a colon
    return ":" in name or (len(name) >= 40 and "." not in name) or (name.count(".") == 2 and len(name) > 60)


__all__ = [
    "ENV_ACCESS_KEY",
    "ENV_CA_CERTS",
    "ENV_CONFIG_DIR",
    "ENV_INSECURE",
    "ENV_SECRET_KEY",
    "ENV_TOKEN",
    "ENV_URL",
    "TLS",
    "Credentials",
    "CredentialsFileWarning",
    "InsecureTLSWarning",
    "Scheme",
    "Server",
    "cli_config_path",
    "load_ca",
    "read_token_file",
    "resolve_server",
]
