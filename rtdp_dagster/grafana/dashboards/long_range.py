"""Long range: one and three years per site, downsampled coarsely enough that the router answers
from the rollups in the history TSDB (daily, weekly, monthly levels)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from rtdp_dagster.grafana.panels import query, tag_values_variable, time_series, with_all

UID = "rtdp-long-range"
FILE_NAME = "long-range.json"
_SITE = {"site": "$site"}
# OpenTSDB's calendar-month unit is "n".
MONTH = "1n"
# Calendar years (the router's serve.max_range allows their leap days).
THREE_YEARS = "3y"


def build() -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard("Long range")
        .uid(UID)
        .description("One and three years per site, served from the rollups.")
        .tags(["rtdp", "fleet", "rollups"])
        .time("now-1y", "now")
        .refresh("1h")
        .timezone("utc")
        .with_variable(
            with_all(
                tag_values_variable(
                    "site", "Site", "Sites reporting CPU (master data site ids).", "tag_values(sys.cpu.util, site)"
                )
            )
        )
        .with_panel(
            time_series(
                "CPU utilisation, daily average (1 year)",
                "Daily average CPU utilisation of each site's hosts (rollup 1d: sum / count, exact).",
                "percent",
                query("A", "sys.cpu.util").tags(_SITE).downsample("avg", "1d").alias("$tag_site"),
            )
            .min(0)
            .max(100)
        )
        .with_panel(
            time_series(
                "Load average, daily peak (1 year)",
                "Highest load average of any host per site and day (rollup 1d max).",
                "short",
                query("A", "sys.load.avg", "max").tags(_SITE).downsample("max", "1d").alias("$tag_site"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "CPU utilisation, weekly average (3 years)",
                "Weekly average CPU utilisation per site (rollup 1w).",
                "percent",
                query("A", "sys.cpu.util").tags(_SITE).downsample("avg", "1w").alias("$tag_site"),
            )
            .min(0)
            .max(100)
            .time_from(THREE_YEARS)
        )
        .with_panel(
            time_series(
                "Memory used, monthly peak (3 years)",
                "Highest memory in use of any host per site and calendar month (rollup 1mo max).",
                "decmbytes",
                query("A", "sys.mem.used_mb", "max").tags(_SITE).downsample("max", MONTH).alias("$tag_site"),
            )
            .min(0)
            .time_from(THREE_YEARS)
        )
    )
