"""Scopes and server URLs: one syntax everywhere, every URL form a user may paste."""

from __future__ import annotations

import warnings

import pytest

from rancherlab.errors import DashboardURLError, ScopeError
from rancherlab.scope import Scope, URLParameterWarning, parse_server_url, resolve_scope, subscribe_url


@pytest.mark.parametrize(
    ("text", "path", "api", "dialect"),
    [
        ("global", "/v3/subscribe", "/v3", "norman"),
        ("cluster:c-abc12", "/v3/clusters/c-abc12/subscribe", "/v3/cluster/c-abc12", "norman"),
        ("project:c-abc12:p-xyz34", "/v3/projects/c-abc12:p-xyz34/subscribe", "/v3/project/c-abc12:p-xyz34", "norman"),
        ("steve", "/v1/subscribe", "/v1", "steve"),
        ("steve:c-abc12", "/k8s/clusters/c-abc12/v1/subscribe", "/k8s/clusters/c-abc12/v1", "steve"),
        ("steve:local", "/v1/subscribe", "/v1", "steve"),
    ],
)
def test_scope_paths(text: str, path: str, api: str, dialect: str) -> None:
    scope = Scope.parse(text)
    assert scope.subscribe_path == path
    assert scope.api_path == api
    assert scope.dialect == dialect
    assert Scope.parse(str(scope)) == scope


def test_steve_local_is_steve() -> None:
    assert Scope.parse("steve:local") == Scope.parse("steve")
    assert str(Scope.parse("steve:local")) == "steve"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty scope"),
        ("project:p-xyz34", "needs the cluster too"),
        ("cluster:c-1:p-2", "use project:c-1:p-2"),
        ("cluster:", "unknown scope"),
        ("namespace:default", "unknown scope"),
        ("cluster:c/1", "not a Rancher id"),
    ],
)
def test_bad_scopes_teach(text: str, needle: str) -> None:
    with pytest.raises(ScopeError, match=needle):
        Scope.parse(text)


@pytest.mark.parametrize(
    ("url", "base", "scope", "types"),
    [
        ("https://rancher.example.com", "https://rancher.example.com", None, ()),
        ("https://Rancher.Example.com:443/", "https://rancher.example.com", None, ()),
        ("https://rancher.example.com/v3", "https://rancher.example.com", None, ()),
        ("https://rancher.example.com/v1/", "https://rancher.example.com", None, ()),
        ("rancher.example.com:8443", "https://rancher.example.com:8443", None, ()),
        ("http://127.0.0.1:8080/v3", "http://127.0.0.1:8080", None, ()),
        ("wss://r.example.com/v3/subscribe?sockId=3", "https://r.example.com", "global", ()),
        (
            "ws://r.example.com:80/v3/subscribe?resourceTypes=cluster&resourceTypes=node&sockId=1",
            "http://r.example.com",
            "global",
            ("cluster", "node"),
        ),
        ("wss://r.example.com/v3/clusters/c-abc12/subscribe?sockId=2", "https://r.example.com", "cluster:c-abc12", ()),
        (
            "wss://r.example.com/v3/projects/c-abc12:p-xyz34/subscribe?sockId=4&resourceTypes=pod",
            "https://r.example.com",
            "project:c-abc12:p-xyz34",
            ("pod",),
        ),
        ("wss://r.example.com/v1/subscribe?sockId=1", "https://r.example.com", "steve", ()),
        (
            "wss://r.example.com/k8s/clusters/c-abc12/v1/subscribe?sockId=17",
            "https://r.example.com",
            "steve:c-abc12",
            (),
        ),
        ("https://r.example.com/rancher/v3/subscribe", "https://r.example.com/rancher", "global", ()),
    ],
)
def test_server_url_forms(url: str, base: str, scope: str | None, types: tuple[str, ...]) -> None:
    parsed = parse_server_url(url)
    assert parsed.base == base
    assert (str(parsed.scope) if parsed.scope else None) == scope
    assert parsed.types == types


def test_dashboard_url_is_refused_with_the_server_url() -> None:
    with pytest.raises(DashboardURLError, match=r"dashboard.*https://r\.example\.com"):
        parse_server_url("https://r.example.com/dashboard/c/local/explorer")


def test_userinfo_is_taken_out_of_the_url() -> None:
    parsed = parse_server_url("https://token-abc:s3cr3t@r.example.com/v3")
    assert parsed.base == "https://r.example.com"
    assert parsed.userinfo == ("token-abc", "s3cr3t")
    assert "s3cr3t" not in repr(parsed)
    with pytest.raises(ScopeError) as err:
        parse_server_url("ftp://token-abc:s3cr3t@r.example.com")
    assert "s3cr3t" not in str(err.value)


def test_subscribe_url() -> None:
    assert subscribe_url("https://r.example.com", Scope.parse("project:c-1:p-2"), ["pod", "deployment"]) == (
        "wss://r.example.com/v3/projects/c-1:p-2/subscribe?resourceTypes=pod&resourceTypes=deployment"
    )
    assert (
        subscribe_url("http://127.0.0.1:9", Scope.parse("steve:c-1"))
        == "ws://127.0.0.1:9/k8s/clusters/c-1/v1/subscribe"
    )
    with pytest.raises(ScopeError):
        subscribe_url("http://h", Scope.parse("steve"), ["pod"])


def test_resolve_scope_agreement() -> None:
    pasted = parse_server_url("wss://r.example.com/v3/clusters/c-1/subscribe")
    assert str(resolve_scope(pasted, None)) == "cluster:c-1"
    assert str(resolve_scope(pasted, "cluster:c-1")) == "cluster:c-1"
    with pytest.raises(ScopeError, match="drop one"):
        resolve_scope(pasted, "global")
    with pytest.raises(ScopeError, match="no scope"):
        resolve_scope(parse_server_url("https://r.example.com"), None)


def test_loopback_detection() -> None:
    assert parse_server_url("http://127.0.0.1:1").is_loopback
    assert parse_server_url("http://localhost:1").is_loopback
    assert parse_server_url("http://[::1]:1").is_loopback
    assert not parse_server_url("https://r.example.com").is_loopback


# --- query parameters Rancher does not read as given ------------------------------------------------------------

TOKEN = "token-q7zx2:UrlQueryS3cretValue0123456789"


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        # Norman reads only resourceTypes= (repeated, exact): other spellings stream every type
        ("wss://r.example.com/v3/subscribe?resourceType=pod", ("not resourceType=", "every type", "resourceTypes=pod")),
        (
            "wss://r.example.com/v3/subscribe?types=node&types=pod",
            ("not types=", "resourceTypes=node&resourceTypes=pod"),
        ),
        ("wss://r.example.com/v3/subscribe?type=cluster", ("not type=", "resourceTypes=cluster")),
        ("wss://r.example.com/v3/subscribe?resourcetypes=cluster", ("case-sensitive", "resourceTypes=cluster")),
        ("wss://r.example.com/v3/clusters/c-1/subscribe?namespace=default", ("no namespace filter", "/v3/projects/")),
        ("wss://r.example.com/v3/subscribe?resourceVersion=99", ("cannot resume", "snapshot=True")),
        ("wss://r.example.com/v3/subscribe?projectId=c-1:p-2", ("ignores projectId=", "/v3/projects/")),
        ("wss://r.example.com/v3/subscribe?name_ne=x&limit=5", ("ignores name_ne=", "ignores limit=")),
        ("wss://r.example.com/v3/subscribe?foo=bar", ("reads only resourceTypes=", "foo= is ignored")),
        # Steve takes watches as messages
        ("wss://r.example.com/v1/subscribe?resourceType=pod", ("watches as messages", "types=('pod',)", "--type")),
        ("wss://r.example.com/v1/subscribe?resourceTypes=pod", ("watches as messages", "types=('pod',)")),
        ("wss://r.example.com/v1/subscribe?resourceVersion=123", ("from each watch message", "REST list")),
        ("wss://r.example.com/k8s/clusters/c-1/v1/subscribe?namespace=kube-system", ('Watch("pod", namespace=...)',)),
        ("wss://r.example.com/v1/subscribe?debounceMs=100", ("debounce_ms=", '"debounceMs"')),
        ("wss://r.example.com/v1/subscribe?exclude=metadata.managedFields", ("every object it pushes", "arrive whole")),
        ("wss://r.example.com/v1/subscribe?foo=bar", ("reads no URL parameters", "foo= is ignored")),
    ],
)
def test_ignored_parameters_warn_with_what_rancher_does(url: str, needles: tuple[str, ...]) -> None:
    with pytest.warns(URLParameterWarning) as record:
        parsed = parse_server_url(url)
    text = " | ".join(str(w.message) for w in record)
    for needle in needles:
        assert needle in text
    assert parsed.notes and all(note in text for note in parsed.notes)


def test_a_misspelled_norman_type_is_not_used_as_a_filter() -> None:
    # Rancher would stream every type: rancherlab does the same (and warned), it does not guess
    with pytest.warns(URLParameterWarning):
        assert parse_server_url("wss://r.example.com/v3/subscribe?resourceType=pod").types == ()
    with pytest.warns(URLParameterWarning):
        assert parse_server_url("wss://r.example.com/v1/subscribe?resourceType=pod").types == ()


def test_sockid_and_resource_types_stay_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_server_url("wss://r.example.com/v3/subscribe?sockId=1&resourceTypes=pod").notes == ()
        assert parse_server_url("wss://r.example.com/v1/subscribe?sockId=1").notes == ()
        assert parse_server_url("https://r.example.com/v3?x=1").notes == ()  # not a subscribe URL


@pytest.mark.parametrize("param", ["token", "access_token", "R_SESS", "password", "api_key", "Authorization"])
def test_credential_in_the_query_warns_and_is_never_shown(param: str) -> None:
    url = f"wss://r.example.com/v3/subscribe?{param}={TOKEN}&resourceTypes=pod"
    with pytest.warns(URLParameterWarning) as record:
        parsed = parse_server_url(url)
    text = " ".join(str(w.message) for w in record) + repr(parsed) + " ".join(parsed.notes)
    assert "reads no credential from the URL" in text and "--token-file" in text
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert parsed.types == ("pod",)
    secret = TOKEN.split(":")[1]
    for bad in (
        f"https://r.example.com/dashboard/home?{param}={TOKEN}",
        f"https://r.example.com/meta/subscribe?{param}={TOKEN}",
        f"https://r.example.com:99999/v3?{param}={TOKEN}",
        f"ftp://r.example.com/v3?{param}={TOKEN}",
        f"https:///v3?{param}={TOKEN}",
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", URLParameterWarning)
            with pytest.raises(ScopeError) as err:
                parse_server_url(bad)
        message = str(err.value)
        assert secret not in message
        assert "?" not in message or f"{param}=***" in message  # the URL shown keeps the name, hides the value
