"""Every panel of every dashboard returns data through the real query router, asked exactly as
Grafana's OpenTSDB data source asks (rtdp grafana verify), after a small workload in both TSDBs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rtdp_dagster.cli import main
from rtdp_dagster.config import Settings
from rtdp_dagster.grafana.build import committed_dashboards
from rtdp_dagster.grafana.verify import DATA, ERROR, NO_DATA, format_results, verify
from rtdp_dagster.serving.server import RouterHandle, start_router
from tests.grafana import workload


@pytest.fixture(scope="module")
def filled(stack: Settings) -> dict[str, int]:
    return workload.fill(stack)


@pytest.fixture(scope="module")
def grafana_router(stack: Settings) -> Iterator[RouterHandle]:
    handle = start_router(stack)
    yield handle
    handle.stop()


def test_every_panel_returns_data(stack: Settings, filled: dict[str, int], grafana_router: RouterHandle) -> None:
    results = verify(grafana_router.url)

    failing = [result for result in results if result.status != DATA]
    assert not failing, "\n" + format_results(failing)
    titles = {model["title"] for model in committed_dashboards().values()}
    assert {result.dashboard for result in results} == titles
    # The fleet row repeats per site: every panel of it once for each site of the master data.
    fleet = [result.panel for result in results if result.dashboard == "Fleet overview"]
    sites = {tags["site"] for tags in workload.sample_hosts(stack)}
    for site in sites:
        assert f"CPU utilisation [site={site}]" in fleet
    assert all(result.points > 0 and result.series > 0 for result in results)


def test_verify_command_reports_a_table_and_json(
    filled: dict[str, int], grafana_router: RouterHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grafana", "verify", "--router-url", grafana_router.url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {row["status"] for row in rows} == {DATA}
    assert {"dashboard", "panel", "status", "series", "points", "detail"} <= set(rows[0])

    assert main(["grafana", "verify", "--router-url", grafana_router.url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["DASHBOARD", "PANEL", "STATUS", "SERIES", "POINTS", "DETAIL"]
    assert out.rstrip().endswith(f"{len(rows)} of {len(rows)} panels have data")


def test_a_panel_without_data_or_with_a_bad_query_fails_the_command(
    filled: dict[str, int], grafana_router: RouterHandle, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = committed_dashboards()["host-drilldown.json"]
    model["panels"][0]["targets"][0]["metric"] = "sys.never.written"
    model["panels"][1]["targets"][0]["aggregator"] = "no_such_aggregator"
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "host-drilldown.json").write_text(json.dumps(model))

    results = {result.panel: result for result in verify(grafana_router.url, root=tmp_path)}

    assert results["CPU utilisation"].status == NO_DATA
    assert "A (sys.never.written)" in results["CPU utilisation"].detail
    assert results["CPU cores"].status == ERROR and "HTTP 400" in results["CPU cores"].detail
    assert results["Memory used"].status == DATA
