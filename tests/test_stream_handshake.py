"""Every refused upgrade gets a diagnosis: cause and what to do, from what rancherlab knows (did REST answer, which
version, HTML or Rancher JSON, which hop answered). A real loopback server answers REST like Rancher and refuses
the upgrade the way proxies, load balancers and Rancher itself do; the real client connects to it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from rancherlab.errors import (
    ConnectGaveUpError,
    NotFoundError,
    PermissionDeniedError,
    RancherlabError,
    TLSError,
    UpgradeRefusedError,
)
from rancherlab.stream import Stream

from ._stream_support import FAST, SECRET, TOKEN, collect

pytestmark = pytest.mark.timeout(60)

VERSION = "v2.8.4"
NGINX_404 = (
    b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
Answer = Callable[[str], bytes]


def response(status: str, body: bytes = b"", **headers: str) -> bytes:
    head = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body


def rancher_rest(path: str) -> bytes:
    """REST as Rancher answers it: the server-version setting and (empty) collections."""
    if path.startswith("/v3/settings/server-version"):
        body = b'{"id":"server-version","type":"setting","value":"%s"}' % VERSION.encode()
    else:
        body = b'{"type":"collection","data":[]}'
    return response("200 OK", body, Content_Type="application/json")


def nothing_answers(path: str) -> bytes:
    return response("404 Not Found", NGINX_404, Server="nginx", Content_Type="text/html")


@contextmanager
def refusing(upgrade: bytes | Callable[[int], bytes], rest: Answer = rancher_rest) -> Iterator[str]:
    """A loopback HTTP server: `rest` answers every path but the subscribe one, which gets `upgrade`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                try:
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        head += chunk
                    path = head.split(b" ", 2)[1].decode()
                    if "subscribe" in path:
                        conn.sendall(upgrade(port) if callable(upgrade) else upgrade)
                    else:
                        conn.sendall(rest(path))
                except (OSError, IndexError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() the thread waits in
        sock.close()
        thread.join(5)


def fail(url: str, scope: str = "global", types: tuple[str, ...] = (), **options: Any) -> RancherlabError:
    opts = replace(FAST, **options)
    stream = Stream(url, scope, types=types, credentials=TOKEN, env={}, cli_config=False, options=opts)
    with pytest.raises(RancherlabError) as info:
        collect(stream, lambda events: False, timeout=15)
    error = info.value
    assert SECRET not in str(error) and SECRET not in repr(error)
    return error


def test_400_from_rancher_after_rest_answered_names_the_proxy_that_dropped_the_upgrade() -> None:
    # gorilla's answer to a request whose Connection: upgrade a proxy removed (rancher/rancher-docs#817)
    gorilla = response(
        "400 Bad Request",
        b"Bad Request\n",
        Sec_Websocket_Version="13",
        Content_Type="text/plain; charset=utf-8",
        X_Content_Type_Options="nosniff",
    )
    with refusing(gorilla) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert "HTTP 400" in text and "Rancher's WebSocket handler" in text
    assert "Connection: upgrade" in text and "proxy" in text and "proxy_set_header Upgrade" in text


def test_400_with_normans_json_appended_is_the_same_diagnosis() -> None:
    body = (
        b"Bad Request\n"
        b'{"baseType":"error","code":"ServerError","message":"websocket: the client is not using the websocket '
        b'protocol: \'upgrade\' token not found in \'Connection\' header","status":500,"type":"error"}'
    )
    with refusing(response("400 Bad Request", body, Content_Type="text/plain")) as url:
        error = fail(url)
    assert isinstance(error, UpgradeRefusedError) and "dropped 'Connection: upgrade'" in str(error)


def test_404_html_page_while_rest_answered_blames_the_ingress_not_the_server() -> None:
    # rancher/rancher#38584: GET /v3 works, /v3/subscribe gets nginx's 404 page
    with refusing(response("404 Not Found", NGINX_404, Server="nginx", Content_Type="text/html")) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert "from nginx" in text and "an HTML page" in text and f"Rancher {VERSION}" in text
    assert "ingress" in text and "/v3/subscribe" in text
    assert "is this a Rancher 2 server" not in text  # REST told us it is


def test_404_where_rest_does_not_answer_either_says_the_url_is_not_rancher() -> None:
    with refusing(nothing_answers(""), rest=nothing_answers) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert "does not answer" in text and "not the Rancher server URL" in text


def test_steve_404_on_an_old_rancher_says_steve_needs_2_5() -> None:
    def old_rest(path: str) -> bytes:
        if path.startswith("/v3/settings/server-version"):
            return response("200 OK", b'{"type":"setting","value":"v2.4.17"}', Content_Type="application/json")
        return rancher_rest(path)

    refusal = response("404 Not Found", b"404 page not found\n", Content_Type="text/plain")
    with refusing(refusal, rest=old_rest) as url:
        error = fail(url, "steve", types=("pod",), snapshot=False)
    assert isinstance(error, NotFoundError) and "v2.4.17" in str(error) and "2.5 or newer" in str(error)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("405 Method Not Allowed", ("HTTP 405", "does not take a GET upgrade", "proxy")),
        ("426 Upgrade Required", ("HTTP 426", "https://", "HTTP/1.1")),
    ],
)
def test_405_and_426_name_the_hop_and_the_fix(status: str, words: tuple[str, ...]) -> None:
    with refusing(response(status, b"<html>no</html>", Server="envoy", Content_Type="text/html")) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert "from envoy" in text and f"Rancher {VERSION}" in text
    for word in words:
        assert word in text


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        ("502 Bad Gateway", "got no valid answer from Rancher"),
        ("503 Service Unavailable", "no healthy Rancher behind the load balancer"),
        ("504 Gateway Timeout", "timed out waiting for Rancher"),
    ],
)
def test_gateway_errors_are_retried_and_the_last_one_is_explained(status: str, cause: str) -> None:
    with refusing(response(status, b"<html>lb</html>", Server="awselb/2.0", Content_Type="text/html")) as url:
        error = fail(url, give_up_after=2)
    text = str(error)
    assert isinstance(error, ConnectGaveUpError)
    assert f"HTTP {status.split()[0]} from awselb/2.0" in text and cause in text


def test_200_login_page_is_an_authenticating_proxy() -> None:
    page = b'<html><body><form action="/oauth2/sign_in"><input type="password" name="password"></form></body></html>'
    with refusing(response("200 OK", page, Server="oauth2-proxy", Content_Type="text/html")) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert "HTTP 200 instead of 101" in text and "login page" in text and "authenticating proxy" in text


def test_200_page_while_rest_answered_says_the_url_is_right() -> None:
    with refusing(response("200 OK", b"<html>hello</html>", Content_Type="text/html")) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert f"Rancher {VERSION}" in text and "the URL is right" in text and "does not forward WebSocket" in text


def test_redirect_to_a_login_page_shows_where_without_the_query() -> None:
    location = f"https://sso.example.com/login?state={SECRET}&next=/v3/subscribe"
    with refusing(response("302 Found", Location=location)) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError)
    assert "HTTP 302" in text and "https://sso.example.com/login" in text and "single sign-on" in text
    assert "state=" not in text


def test_redirect_to_https_says_use_https() -> None:
    with refusing(
        lambda port: response("301 Moved Permanently", Location=f"https://127.0.0.1:{port}/v3/subscribe")
    ) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, UpgradeRefusedError) and "HTTP 301" in text and "use the https:// URL" in text


def test_plain_http_to_a_tls_port_is_a_tls_error_that_says_use_https() -> None:
    page = b"<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>"
    with refusing(response("400 Bad Request", page, Server="nginx", Content_Type="text/html")) as url:
        error = fail(url)
    assert isinstance(error, TLSError) and "https://" in str(error)


def test_a_proxy_403_page_is_not_blamed_on_the_token() -> None:
    with refusing(response("403 Forbidden", b"<html>Access denied</html>", Server="cloudflare")) as url:
        error = fail(url)
    text = str(error)
    assert isinstance(error, PermissionDeniedError)
    assert "from cloudflare" in text and "authenticating proxy" in text and f"Rancher {VERSION}" in text


def test_rancher_origin_403_keeps_rancher_s_own_explanation() -> None:
    body = b'{"Code":{"Code":"PermissionDenied","Status":403},"Message":"origin not allowed","Cause":null}\n'
    with refusing(response("403 Forbidden", body, X_Api_Cattle_Auth="true", Content_Type="text/plain")) as url:
        error = fail(url)
    assert isinstance(error, PermissionDeniedError) and "Origin" in str(error)


def test_an_answer_that_echoes_the_credential_does_not_show_it() -> None:
    def echo(port: int) -> bytes:
        return response("418 I'm a teapot", f"refused: Bearer {TOKEN}".encode(), Content_Type="text/plain")

    with refusing(echo) as url:
        error = fail(url)  # `fail` checks the secret is in neither str nor repr
    assert isinstance(error, UpgradeRefusedError) and "HTTP 418" in str(error) and "refused: Bearer ***" in str(error)
