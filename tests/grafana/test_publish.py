"""`rtdp grafana publish` against a local stand-in for Grafana's HTTP API (unit tests of the logic)."""

from __future__ import annotations

import socket

import pytest

from rtdp_dagster.cli import main
from rtdp_dagster.grafana import datasource
from rtdp_dagster.grafana.build import committed_dashboards
from rtdp_dagster.grafana.publish import PublishError, publish
from tests.grafana.fake_grafana import GOOD_TOKEN, VIEWER_TOKEN, FakeGrafana

ROUTER = "http://router.example:4250"


@pytest.fixture
def grafana():
    with FakeGrafana() as fake:
        yield fake


def test_first_publish_creates_everything_by_uid(grafana: FakeGrafana) -> None:
    dashboards = committed_dashboards()
    actions = publish(grafana.url, GOOD_TOKEN, ROUTER, dashboards)

    assert {(a.kind, a.uid, a.outcome) for a in actions} == {
        ("datasource", datasource.UID, "created"),
        ("folder", datasource.FOLDER_UID, "created"),
        *(("dashboard", model["uid"], "created") for model in dashboards.values()),
    }
    source = grafana.datasources[datasource.UID]
    assert (source["type"], source["url"], source["access"]) == ("opentsdb", ROUTER, "proxy")
    assert source["jsonData"] == {"tsdbVersion": 3, "tsdbResolution": 2, "lookupLimit": 1000}
    assert grafana.folders[datasource.FOLDER_UID]["title"] == datasource.FOLDER_TITLE
    assert set(grafana.dashboards) == {model["uid"] for model in dashboards.values()}
    posted = [body for method, path, body in grafana.requests if path == "/api/dashboards/db"]
    assert all(body["overwrite"] and body["folderUid"] == datasource.FOLDER_UID for body in posted)
    # A new dashboard must not carry an id of another Grafana.
    assert all(body["dashboard"]["id"] is None for body in posted)


def test_second_publish_changes_nothing(grafana: FakeGrafana) -> None:
    dashboards = committed_dashboards()
    publish(grafana.url, GOOD_TOKEN, ROUTER, dashboards)
    writes_before = len(grafana.writes())
    versions = {uid: stored["dashboard"]["version"] for uid, stored in grafana.dashboards.items()}

    actions = publish(grafana.url, GOOD_TOKEN, ROUTER, dashboards)

    assert {a.outcome for a in actions} == {"unchanged"}
    assert len(grafana.writes()) == writes_before
    assert {uid: stored["dashboard"]["version"] for uid, stored in grafana.dashboards.items()} == versions
    assert len(grafana.datasources) == 1 and len(grafana.folders) == 1


def test_changes_are_updated_in_place(grafana: FakeGrafana) -> None:
    dashboards = committed_dashboards()
    publish(grafana.url, GOOD_TOKEN, ROUTER, dashboards)
    uid = next(iter(dashboards.values()))["uid"]
    grafana.dashboards[uid]["dashboard"]["title"] = "edited in the UI"
    grafana.folders[datasource.FOLDER_UID]["title"] = "renamed"

    actions = publish(grafana.url, GOOD_TOKEN, "http://router-2:4250", dashboards)

    outcomes = {(a.kind, a.uid): a.outcome for a in actions}
    assert outcomes[("datasource", datasource.UID)] == "updated"
    assert outcomes[("folder", datasource.FOLDER_UID)] == "updated"
    assert outcomes[("dashboard", uid)] == "updated"
    assert grafana.datasources[datasource.UID]["url"] == "http://router-2:4250"
    assert ("PUT", f"/api/datasources/uid/{datasource.UID}") in grafana.writes()
    assert grafana.dashboards[uid]["dashboard"]["title"] != "edited in the UI"
    assert grafana.dashboards[uid]["dashboard"]["version"] == 2
    assert len(grafana.datasources) == 1


def test_wrong_token_is_one_clear_line(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PublishError, match=r"refused the token \(401 Unauthorized\)"):
        publish(grafana.url, "wrong", ROUTER, committed_dashboards())

    code = main(["grafana", "publish", "--url", grafana.url, "--token", "wrong", "--router-url", ROUTER])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("rtdp: Grafana at http://127.0.0.1:") and "401 Unauthorized" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert grafana.writes() == []


def test_token_without_permission_is_named(grafana: FakeGrafana) -> None:
    with pytest.raises(PublishError, match=r"403 Forbidden"):
        publish(grafana.url, VIEWER_TOKEN, ROUTER, committed_dashboards())
    assert grafana.datasources == {}


def test_unreachable_grafana_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now

    code = main(
        ["grafana", "publish", "--url", f"http://127.0.0.1:{port}", "--token", GOOD_TOKEN, "--router-url", ROUTER]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert err == f"rtdp: cannot reach Grafana at http://127.0.0.1:{port}: connection refused\n"


def test_token_comes_from_the_environment(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", GOOD_TOKEN)
    assert main(["grafana", "publish", "--url", grafana.url, "--router-url", ROUTER]) == 0
    assert datasource.UID in grafana.datasources

    monkeypatch.delenv("GRAFANA_TOKEN")
    with pytest.raises(PublishError, match="no Grafana credentials"):
        publish(grafana.url, None, ROUTER, committed_dashboards())
