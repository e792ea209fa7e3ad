"""The committed grafana/ files are exactly what the Python dashboards build, and every panel is complete."""

from __future__ import annotations

import re

from rtdp_dagster.collection.metrics import FIGURES as COLLECT_FIGURES
from rtdp_dagster.grafana import datasource
from rtdp_dagster.grafana.build import GRAFANA_DIR, committed_dashboards, rendered_files, stale_files
from rtdp_dagster.streaming.progress import METRICS as STREAM_FIGURES


def _panels(model: dict) -> list[dict]:
    panels = []
    for panel in model["panels"]:
        if panel["type"] == "row":
            panels += panel.get("panels", [])
        else:
            panels.append(panel)
    return panels


def test_committed_files_equal_a_fresh_build() -> None:
    assert stale_files() == [], "run `rtdp grafana build` and commit grafana/"
    assert set(committed_dashboards()) == {p.split("/")[1] for p in rendered_files() if p.startswith("dashboards/")}


def test_stale_files_notices_a_hand_edit(tmp_path) -> None:
    for relative, content in rendered_files().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    assert stale_files(tmp_path) == []
    edited = tmp_path / "dashboards" / "long-range.json"
    edited.write_text(edited.read_text().replace('"1d"', '"1h"'))
    assert stale_files(tmp_path) == ["dashboards/long-range.json"]


def test_provisioning_points_at_the_router() -> None:
    text = (GRAFANA_DIR / "provisioning" / "datasources" / "rtdp.yaml").read_text()
    assert "type: opentsdb" in text and f"uid: {datasource.UID}" in text
    assert "url: ${RTDP_ROUTER_URL}" in text and "tsdbVersion: 3" in text


def test_every_panel_has_title_unit_description_and_router_queries() -> None:
    dashboards = committed_dashboards()
    assert len({model["uid"] for model in dashboards.values()}) == len(dashboards) == 4
    for name, model in dashboards.items():
        for panel in _panels(model):
            where = f"{name}: {panel.get('title')}"
            assert panel.get("title") and panel.get("description"), where
            assert panel["fieldConfig"]["defaults"].get("unit"), where
            assert panel["datasource"] == {"type": "opentsdb", "uid": datasource.UID}, where
            assert panel["targets"] and all(
                t.get("metric") and t["datasource"]["uid"] == datasource.UID for t in panel["targets"]
            ), where


def test_platform_operations_reads_metric_names_that_exist() -> None:
    model = committed_dashboards()["platform-operations.json"]
    metrics = {target["metric"] for panel in _panels(model) for target in panel["targets"]}
    for metric in metrics:
        prefix, _, figure = metric.rpartition(".")
        if prefix == "rtdp.stream":
            assert figure in STREAM_FIGURES, metric
        elif prefix == "rtdp.collect":
            assert figure in COLLECT_FIGURES, metric
    assert {"rtdp.dq.check_status", "rtdp.dq.failing_rows", "rtdp.dq.recon.unexplained"} <= metrics


def test_fleet_variables_are_chained_by_site() -> None:
    variables = {v["name"]: v for v in committed_dashboards()["fleet-overview.json"]["templating"]["list"]}
    assert list(variables) == ["site", "app", "host"]
    assert re.fullmatch(r"tag_values\(sys\.cpu\.util, app, site=\$site\)", variables["app"]["query"])
    assert "site=$site" in variables["host"]["query"] and "app=$app" in variables["host"]["query"]
    assert all(v["allValue"] == "*" and v["includeAll"] for v in variables.values())


def test_long_range_panels_downsample_coarsely() -> None:
    model = committed_dashboards()["long-range.json"]
    intervals = {target["downsampleInterval"] for panel in _panels(model) for target in panel["targets"]}
    assert intervals == {"1d", "1w", "1n"}
    assert {panel.get("timeFrom") for panel in _panels(model)} == {None, "3y"}
