"""Fleet overview: per site (one repeated row each), CPU, memory, load, request and network rates
of every host, filtered by site, app and host variables filled from the router."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from rtdp_dagster.grafana.panels import query, tag_values_variable, time_series, with_all

UID = "rtdp-fleet-overview"
FILE_NAME = "fleet-overview.json"
# Every host reports CPU, so its series carry every site/app/host combination for the variables.
_INDEX_METRIC = "sys.cpu.util"
_TAGS = {"site": "$site", "app": "$app", "host": "$host"}


def build() -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard("Fleet overview")
        .uid(UID)
        .description("Per site: CPU, memory, load, request and network rates of every host.")
        .tags(["rtdp", "fleet"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .with_variable(
            with_all(
                tag_values_variable(
                    "site", "Site", "Sites reporting CPU (master data site ids).", f"tag_values({_INDEX_METRIC}, site)"
                )
            )
        )
        .with_variable(
            with_all(
                tag_values_variable(
                    "app",
                    "Application",
                    "Applications running at the chosen site.",
                    f"tag_values({_INDEX_METRIC}, app, site=$site)",
                )
            )
        )
        .with_variable(
            with_all(
                tag_values_variable(
                    "host",
                    "Host",
                    "Hosts of the chosen site and application.",
                    f"tag_values({_INDEX_METRIC}, host, site=$site, app=$app)",
                ),
                multi=True,
            )
        )
        .with_row(dashboard_builders.Row("Site $site").repeat("site"))
        .with_panel(
            time_series(
                "CPU utilisation",
                "Average CPU utilisation of each host (sys.cpu.util).",
                "percent",
                query("A", "sys.cpu.util").tags(_TAGS).downsample("avg").alias("$tag_host"),
            )
            .min(0)
            .max(100)
        )
        .with_panel(
            time_series(
                "Memory used",
                "Memory in use on each host (sys.mem.used_mb).",
                "decmbytes",
                query("A", "sys.mem.used_mb").tags(_TAGS).downsample("avg").alias("$tag_host"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Load average",
                "System load average of each host (sys.load.avg).",
                "short",
                query("A", "sys.load.avg").tags(_TAGS).downsample("avg").alias("$tag_host"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Request rate",
                "Requests per second served on each host: the rate of the counter app.requests.count "
                "(counter resets dropped).",
                "reqps",
                query("A", "app.requests.count", "sum")
                .tags(_TAGS)
                .downsample("max")
                .rate(counter=True)
                .alias("$tag_host $tag_app"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Network throughput",
                "Bytes per second received and sent by each host: rates of the counters "
                "sys.net.bytes_in and sys.net.bytes_out.",
                "Bps",
                query("A", "sys.net.bytes_in", "sum")
                .tags(_TAGS)
                .downsample("max")
                .rate(counter=True)
                .alias("$tag_host in"),
                query("B", "sys.net.bytes_out", "sum")
                .tags(_TAGS)
                .downsample("max")
                .rate(counter=True)
                .alias("$tag_host out"),
                width=24,
            ).min(0)
        )
    )
