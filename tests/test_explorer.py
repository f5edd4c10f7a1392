"""The Explorer widget driven as a user would, by setting values and clicking buttons, against the simulator."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets
import pytest

from rancherlab.explorer import Explorer
from rancherlab.explorer._explorer import LIST_ROWS
from rancherlab.simulator import Simulator

from .conftest import SECRET_TOKEN

SECRET = SECRET_TOKEN.split(":", 1)[1]
FAST: dict[str, Any] = {"norman_ping": 0.2, "steve_ping": 0.2}


def widget_state(root: ipywidgets.Widget) -> str:
    """Every trait of every widget in the tree, as the frontend (and a saved notebook) would get it."""
    states, todo, seen = [], [root], set()
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        states.append(widget.get_state())
        todo.extend(getattr(widget, "children", ()))
        if getattr(widget, "layout", None) is not None:
            states.append(widget.layout.get_state())
    return json.dumps(states, default=str)


def until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=4, token=SECRET_TOKEN, rate=40, **FAST) as server:
        yield server


@pytest.fixture
def explorer() -> Iterator[Explorer]:
    ex = Explorer(env={}, cli_config=False, refresh=0.1)
    try:
        yield ex
    finally:
        ex.close()


def type_url_and_token(ex: Explorer, url: str, token: str = SECRET_TOKEN) -> None:
    ex.url.value = url
    ex.cred_source.value = "token"
    ex.token.value = token  # what the browser sends when the user presses Enter in the Password field


def test_nothing_configured_shows_the_controls(explorer: Explorer):
    ex = explorer
    assert isinstance(ex.widget, ipywidgets.VBox)
    for control in (ex.url, ex.cred_source, ex.token, ex.cacert, ex.insecure, ex.simulate_button, ex.connect_button):
        assert not control.disabled
    assert isinstance(ex.token, ipywidgets.Password)
    assert [v for _, v in ex.cred_source.options] == ["env", "cli", "token", "apikey", "cookie"]
    assert ex.start_button.disabled and ex.message.value == ""
    for source, shown in (("apikey", ex.secret_key), ("cookie", ex.cookie), ("env", None), ("token", ex.token)):
        ex.cred_source.value = source  # only the fields of the source picked show; the others stay put
        assert ex.url.layout.display is None and ex.cacert.layout.display is None
        hidden = {ex.token, ex.secret_key, ex.cookie} - {shown}
        assert all(f.layout.display == "none" for f in hidden) and (shown is None or shown.layout.display is None)
    ex.connect_button.click()  # nothing typed yet: the widget says what to do
    assert "type the server URL first" in ex.message.value


def test_url_plus_typed_token_connects_and_the_password_is_cleared(sim: Simulator, explorer: Explorer):
    ex = explorer
    type_url_and_token(ex, sim.url)
    assert ex.token.value == ""  # read and cleared at once
    assert "token-zq…" in ex.credential.value
    ex.connect_button.click()
    assert "connected to" in ex.message.value, ex.message.value
    assert sorted(v for _, v in ex.cluster.options) == sorted(sim.world.clusters())
    assert ex.cluster.value != "local" and ex.project.value in sim.world.projects(ex.cluster.value)
    assert "pod" in ex.types.options and ex.types.value == ("pod",)
    assert not ex.start_button.disabled
    ex.api.value = "steve"
    assert str(ex.scope()) == f"steve:{ex.cluster.value}" and "pod" in ex.types.options
    assert "default" in [v for _, v in ex.namespace.options]  # Steve namespaces are listed
    for text in (widget_state(ex.widget), repr(ex)):
        assert SECRET not in text


def test_a_typed_secret_is_neither_echoed_nor_kept(explorer: Explorer, monkeypatch: pytest.MonkeyPatch):
    """What the browser sends when Enter is pressed in the field: ipywidgets would echo it to every browser."""
    sent: list[str] = []
    for field in (explorer.token, explorer.secret_key, explorer.cookie):
        monkeypatch.setattr(field, "_send", lambda msg, buffers=None: sent.append(json.dumps(msg)))
    explorer.access_key.value = "token-zq9xk"
    for field in (explorer.token, explorer.secret_key, explorer.cookie):
        field.set_state({"value": SECRET_TOKEN if field is explorer.token else SECRET})
        assert field.value == ""
    assert sent and not [m for m in sent if SECRET in m]  # only the cleared value went back
    assert '"value": ""' in sent[0]


def test_api_key_pair_and_cookie_fields_are_cleared_too(sim: Simulator, explorer: Explorer):
    ex = explorer
    ex.url.value = sim.url
    ex.cred_source.value = "apikey"
    ex.access_key.value, ex.secret_key.value = SECRET_TOKEN.split(":", 1)
    assert ex.secret_key.value == "" and "basic" in ex.credential.value
    ex.connect_button.click()
    assert "connected to" in ex.message.value, ex.message.value
    ex.cred_source.value = "cookie"
    ex.cookie.value = "R_SESS=" + SECRET_TOKEN
    assert ex.cookie.value == "" and "cookie" in ex.credential.value
    assert SECRET not in widget_state(ex.widget)


@pytest.mark.parametrize(
    ("path", "api", "kind", "types"),
    [
        ("/v3/subscribe?resourceTypes=node", "norman", "global", ("node",)),
        (
            "/v3/projects/{project}/subscribe?resourceTypes=pod&resourceTypes=workload",
            "norman",
            "project",
            ("pod", "workload"),
        ),
        ("/k8s/clusters/{cluster}/v1/subscribe", "steve", None, None),
    ],
)
def test_a_pasted_subscribe_url_sets_the_controls(sim: Simulator, explorer: Explorer, path, api, kind, types):
    ex = explorer
    cluster = [c for c in sim.world.clusters() if c != "local"][-1]  # not the one the Explorer picks itself
    project = sim.world.projects(cluster)[-1]
    ws = sim.url.replace("http://", "ws://")
    type_url_and_token(ex, ws + path.format(project=project, cluster=cluster))
    assert ex.api.value == api
    if kind:
        assert ex.kind.value == kind
    if kind == "project":
        assert ex.cluster.value == cluster and ex.project.value == project
    if types:
        assert ex.types.value == types
    ex.connect_button.click()  # the lists come from the server; the pasted picks stay
    assert "connected to" in ex.message.value, ex.message.value
    assert ex.api.value == api
    if kind == "project":
        assert str(ex.scope()) == f"project:{project}"
    if kind == "global":
        assert str(ex.scope()) == "global"
    if types:
        assert ex.types.value == types
    if api == "steve":
        assert str(ex.scope()) == f"steve:{cluster}"


def connected(ex: Explorer, sim: Simulator) -> Explorer:
    type_url_and_token(ex, sim.url)
    ex.connect_button.click()
    assert "connected to" in ex.message.value, ex.message.value
    return ex


def test_start_captures_locks_the_controls_and_stop_stops(sim: Simulator, explorer: Explorer):
    ex = connected(explorer, sim)
    ex.start_button.click()
    assert ex.capture is not None and ex.capture.running
    locked = (ex.url, ex.token, ex.cred_source, ex.api, ex.kind, ex.cluster, ex.project, ex.types, ex.connect_button)
    assert all(c.disabled for c in locked) and ex.start_button.disabled and not ex.stop_button.disabled
    assert until(lambda: "resource.change" in ex.counts.value and "connected" in ex.status.value), ex.status.value
    assert "wire frames" in ex.counts.value and "<td>pod</td>" in ex.counts.value
    assert "REST snapshot / resync objects" in ex.counts.value  # the snapshot is counted apart from frames
    assert "events/s" in ex.rate.value and "<svg" in ex.timeline.value

    # selecting an event shows its object as formatted JSON and its raw frame
    assert until(lambda: any("resource.change" in label for label, _ in ex.events.options))
    label, seq = next((label, seq) for label, seq in ex.events.options if "resource.change" in label)
    ex.events.value = seq  # the newest change: it stays listed for a while, whatever the redraws do
    event = ex.tally.find(seq)
    assert event is not None and event.id and event.id in label
    shown = html.unescape(ex.event_json.value)
    assert f'\n  "id": {json.dumps(event.data["id"])}' in shown  # formatted JSON, indented
    assert "resource.change" in ex.event_raw.value

    ex.stop_button.click()
    assert not ex.capture.running
    assert not any(c.disabled for c in locked) and not ex.start_button.disabled and ex.stop_button.disabled
    assert until(lambda: "stopped" in ex.status.value), ex.status.value
    assert set(ex.frame()["type"].dropna()) >= {"pod"}

    # the schema and object views cover every object that arrived
    ex.schema_button.click()
    assert ("norman", "pod") in [v for _, v in ex.schema_type.options]
    ex.schema_type.value = ("norman", "pod")
    assert "<code>metadata" in ex.schema_view.value or "<code>id</code>" in ex.schema_view.value
    changed = next(key for key in ex.tally.objects() if len(ex.tally.versions(key)) > 1)
    ex.object_pick.value = changed
    assert ex.versions_view.value.count("<tr>") == len(ex.tally.versions(changed)) + 1
    assert "<th>path</th>" in ex.changes_view.value or "no field changed" in ex.changes_view.value
    assert SECRET not in widget_state(ex.widget)


def test_record_toggle_writes_and_shows_bytes_and_events(sim: Simulator, explorer: Explorer, tmp_path):
    ex = connected(explorer, sim)
    ex.record_toggle.value = True
    ex.record_path.value = str(tmp_path / "x.jsonl")
    ex.start_button.click()
    assert until(lambda: "events written" in ex.record_status.value and ex.capture.stats.recorded > 5)
    ex.stop_button.click()
    assert until(lambda: f"{ex.capture.stats.recorded:,} events written" in ex.record_status.value)
    assert str(tmp_path / "x.jsonl") in ex.record_status.value
    assert SECRET not in (tmp_path / "x.jsonl").read_text()


def test_a_bad_token_shows_a_readable_error(sim: Simulator, explorer: Explorer):
    ex = explorer
    type_url_and_token(ex, sim.url, "token-wrong:NotTheRightSecretAtAll0123456789")
    ex.connect_button.click()
    assert "401" in ex.message.value and "What to do" in ex.message.value, ex.message.value
    assert "NotTheRightSecret" not in ex.message.value and ex.start_button.disabled


def test_steve_without_a_type_and_a_forbidden_type_show_readable_errors(explorer: Explorer):
    ex = explorer
    with Simulator(seed=4, token=SECRET_TOKEN, rate=5, forbid=("secret",), **FAST) as forbidding:
        connected(ex, forbidding)
        ex.api.value = "steve"
        ex.types.value = ()
        ex.start_button.click()
        assert "select at least one type" in ex.message.value and ex.capture is None

        ex.types.value = ("secret",)
        ex.start_button.click()
        assert until(lambda: "What to do" in ex.status.value and not ex.capture.running), ex.status.value
        assert "can not list" in ex.status.value or "may not" in ex.status.value
        assert not ex.start_button.disabled and not ex.api.disabled  # unlocked again after the failure

        ex.types.value = ("secret", "pod")  # one refused watch: the others go on, the widget says which
        ex.start_button.click()
        assert until(lambda: "watch stopped by the server: secret" in ex.status.value), ex.status.value
        assert ex.capture.running
        ex.stop_button.click()


def test_try_it_without_a_rancher_starts_the_simulator(explorer: Explorer):
    ex = explorer
    ex.simulate_button.click()
    assert ex.simulator is not None and ex.url.value == ex.simulator.url
    assert "connected to" in ex.message.value and "simulator" in ex.credential.value
    assert ex.simulator.token.split(":", 1)[1] not in widget_state(ex.widget)


def test_arguments_still_connect_at_once(sim: Simulator):
    ex = Explorer(sim.url, SECRET_TOKEN, env={}, cli_config=False)
    try:
        assert sorted(v for _, v in ex.cluster.options) == sorted(sim.world.clusters())
        assert f"/v3/projects/{ex.project.value}/subscribe" in ex.endpoint.value
        assert SECRET not in repr(ex) and SECRET not in widget_state(ex.widget)
    finally:
        ex.close()


def test_a_second_server_gets_its_own_scope_not_the_first_ones(sim: Simulator, explorer: Explorer):
    ex = connected(explorer, sim)
    with Simulator(seed=9, token=SECRET_TOKEN, rate=40, **FAST) as other:
        connected(ex, other)
        assert ex.cluster.value in other.world.clusters() and ex.project.value in other.world.projects(ex.cluster.value)
        ex.start_button.click()
        assert until(lambda: "resource.change" in ex.counts.value), ex.counts.value
        ex.stop_button.click()


def test_an_outage_shows_down_since_the_retry_and_the_close_code(sim: Simulator):
    # no jitter: after the drop the stream waits exactly 1.5 s before it reconnects, long enough to see it down
    ex = Explorer(env={}, cli_config=False, refresh=0.1, backoff_initial=1.5, jitter=False)
    try:
        connected(ex, sim)
        ex.start_button.click()
        assert until(lambda: "connected</b> since" in ex.status.value), ex.status.value
        sim.drop_now()  # every socket closed without a close frame: the client sees 1006
        assert until(lambda: "down</b> since" in ex.status.value), ex.status.value
        assert "last close 1006" in ex.status.value
        assert "retry in ≤" in ex.status.value or "reconnecting" in ex.status.value
        assert until(lambda: "connected</b> since" in ex.status.value and "1 reconnect" in ex.status.value)
        assert "gaps" in ex.status.value and "last close 1006" in ex.status.value
        assert ex.timeline.value.count("<title>connection") == 2  # both connections on the timeline, a gap between
    finally:
        ex.close()


def test_credentials_from_the_environment_or_the_rancher_cli_config(sim: Simulator, tmp_path):
    ex = Explorer(env={"RANCHER_URL": sim.url, "RANCHER_TOKEN_KEY": SECRET_TOKEN}, cli_config=False)
    try:  # a server in the environment: the Explorer connects at once
        assert ex.cred_source.value == "env" and "connected to" in ex.message.value, ex.message.value
        assert ex.url.value == sim.url and "environment" in ex.credential.value
    finally:
        ex.close()
    config = tmp_path / "cli2.json"
    config.write_text(
        json.dumps({"CurrentServer": "sim", "Servers": {"sim": {"url": sim.url, "tokenKey": SECRET_TOKEN}}})
    )
    config.chmod(0o600)
    ex = Explorer(env={}, cli_config=str(config))
    try:
        ex.cred_source.value = "cli"
        ex.connect_button.click()  # no URL typed: the config's server is used and shown
        assert "connected to" in ex.message.value and ex.url.value == sim.url, ex.message.value
        assert SECRET not in widget_state(ex.widget)
    finally:
        ex.close()


def test_an_events_json_and_raw_frame_are_shown_redacted(sim: Simulator, explorer: Explorer):
    ex = explorer
    type_url_and_token(ex, sim.url + "/v1/subscribe")  # Steve, the local cluster
    ex.connect_button.click()
    assert str(ex.scope()) == "steve" and "secret" in ex.types.options, ex.message.value
    ex.types.value = ("secret",)
    ex.start_button.click()

    def has_data(e: Any) -> bool:
        return isinstance(e.data, dict) and bool(e.data.get("data"))

    assert until(lambda: any(has_data(e) for e in ex.tally.snapshot()[2])), ex.status.value
    ex.stop_button.click()
    assert until(lambda: len(ex.events.options) == min(LIST_ROWS, len(ex.tally.snapshot()[2])))  # the last redraw
    values = [v for k, obj in sim.ground_truth().items() if k[0] == "secret" for v in (obj.get("data") or {}).values()]
    assert values
    with_data = 0
    for label, seq in ex.events.options:
        ex.events.value = seq
        shown = ex.event_json.value + ex.event_raw.value
        assert not [v for v in values if v in shown], label
        event = ex.tally.find(seq)
        if event is not None and has_data(event):
            with_data += 1
            assert "&lt;redacted len=" in ex.event_json.value, label
            assert "&lt;redacted len=" in ex.event_raw.value if event.raw else "no raw frame" in ex.event_raw.value
    assert with_data


def test_recording_twice_with_the_default_name_writes_two_files(
    sim: Simulator, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    ex = Explorer(env={}, cli_config=False, refresh=0.1)
    try:
        connected(ex, sim)
        ex.record_toggle.value = True
        for _ in range(2):
            ex.start_button.click()
            assert ex.capture is not None and until(lambda: ex.capture.stats.recorded > 0), ex.status.value
            ex.stop_button.click()
            assert ex.capture.error is None, ex.capture.error
        assert len(list((tmp_path / "recordings").glob("explorer-*.jsonl.gz"))) == 2
    finally:
        ex.close()


def test_the_schema_view_covers_every_object_not_only_the_ones_kept():
    from rancherlab.explorer import Tally
    from rancherlab.explorer._tally import FOLD_AT
    from rancherlab.protocol import norman, parse_frame

    tally = Tally(rows=10, versions=3)
    n = FOLD_AT + 500  # past the background fold's threshold
    for i in range(n):
        obj = {"id": f"default:web-{i % 7}", "type": "pod", "state": "running", "n": i}
        if i % 2:
            obj["late"] = "x"
        tally.add(parse_frame(norman.change_frame(obj), "norman").stamped(seq=i + 1, conn=1, t=0.0, ts=None))
    catalog = tally.fold()
    assert catalog.types() == [("norman", "pod", n)]
    rows = {r["path"]: r for r in catalog.rows("norman", "pod")}
    assert rows["n"]["presence"] == 100.0 and rows["late"]["presence"] == 100.0 * (n // 2) / n and rows["late"]["late"]
    assert len(tally.snapshot()[2]) == 10 and len(tally.versions(("norman", "pod", "default:web-0"))) == 3


def test_tls_needs_the_ca_file_and_says_so(explorer: Explorer, tmp_path):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    with Simulator(seed=2, rate=20, token=SECRET_TOKEN, certfile=str(certfile), keyfile=str(keyfile), **FAST) as sim:
        ex = explorer
        type_url_and_token(ex, sim.url)
        ex.connect_button.click()
        assert "TLS certificate" in ex.message.value and "CA file" in ex.message.value, ex.message.value
        ex.cacert.value = str(cafile)
        ex.connect_button.click()
        assert "connected to https://" in ex.message.value, ex.message.value
        ex.start_button.click()  # the capture trusts the same CA
        assert until(lambda: "resource." in ex.counts.value), ex.status.value
        ex.stop_button.click()


def test_events_per_second_of_a_young_capture_average_over_the_seconds_it_had():
    from rancherlab.explorer import Tally
    from rancherlab.protocol import norman, parse_frame

    tally = Tally()
    event = parse_frame(norman.PING, "norman").stamped(seq=1, conn=1, t=0.0, ts=None)

    def next_second() -> None:
        second = int(time.monotonic())
        while int(time.monotonic()) == second:
            time.sleep(0.005)

    assert tally.rate() == 0.0
    next_second()
    for _ in range(30):
        tally.add(event)
    next_second()
    assert tally.rate() == 30.0  # one whole second so far: 30/s, not 30 spread over the 5 s window
