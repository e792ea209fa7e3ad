"""Panel, query and variable helpers shared by the dashboards: every panel gets a title, a unit and
a description, and reads the router data source."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import statetimeline, timeseries
from grafana_foundation_sdk.models import common, dashboard

from rtdp_dagster.grafana import datasource
from rtdp_dagster.grafana.opentsdb import OpenTsdbQueryBuilder

# Realtime panels: the automatic downsample interval is range / MAX_DATA_POINTS, never finer than
# the collection cadence (Grafana computes it the same way for every panel width).
REALTIME_MIN_INTERVAL = "10s"
MAX_DATA_POINTS = 300
ALL = "$__all"


def query(ref_id: str, metric: str, aggregator: str = "avg") -> OpenTsdbQueryBuilder:
    return OpenTsdbQueryBuilder(ref_id).datasource(datasource.reference()).metric(metric).aggregator(aggregator)


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"])
    )


def time_series(
    title: str, description: str, unit: str, *targets: OpenTsdbQueryBuilder, width: int = 12, height: int = 8
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(datasource.reference())
        .span(width)
        .height(height)
        .interval(REALTIME_MIN_INTERVAL)
        .max_data_points(MAX_DATA_POINTS)
        .legend(_legend())
        .fill_opacity(10)
    )
    for target in targets:
        panel.with_target(target)
    return panel


def pass_fail_timeline(
    title: str, description: str, *targets: OpenTsdbQueryBuilder, width: int = 24, height: int = 8
) -> statetimeline.Panel:
    """1 = pass (green), 0 = fail (red)."""
    mappings: list[dashboard.ValueMapping] = [
        dashboard.ValueMap(
            options={
                "1": dashboard.ValueMappingResult(text="pass", color="green", index=0),
                "0": dashboard.ValueMappingResult(text="fail", color="red", index=1),
            }
        )
    ]
    panel = (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .datasource(datasource.reference())
        .span(width)
        .height(height)
        .interval(REALTIME_MIN_INTERVAL)
        .max_data_points(MAX_DATA_POINTS)
        .mappings(mappings)
        .show_value(common.VisibilityMode.NEVER)
    )
    for target in targets:
        panel.with_target(target)
    return panel


def tag_values_variable(name: str, label: str, description: str, query_text: str) -> dashboard_builders.QueryVariable:
    """A variable filled by Grafana's OpenTSDB ``tag_values(metric, tagk[, tagk2=value, ...])`` query,
    which the data source answers with /api/search/lookup: chained variables filter by earlier ones."""
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(datasource.reference())
        .query(query_text)
        .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
    )


def with_all(variable: dashboard_builders.QueryVariable, multi: bool = False) -> dashboard_builders.QueryVariable:
    """Adds "All" as ``*``: a wildcard in OpenTSDB tags and in lookups, where listing every value would not be."""
    return (
        variable.include_all(True)
        .all_value("*")
        .multi(multi)
        .current(dashboard.VariableOption(selected=True, text="All", value=[ALL] if multi else ALL))
    )
