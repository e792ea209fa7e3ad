"""Host drill-down: every metric of one host."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders

from rtdp_dagster.grafana.panels import query, tag_values_variable, time_series, with_all

UID = "rtdp-host-drilldown"
FILE_NAME = "host-drilldown.json"
_INDEX_METRIC = "sys.cpu.util"
_HOST = {"host": "$host"}


def build() -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard("Host drill-down")
        .uid(UID)
        .description("Every metric of one host.")
        .tags(["rtdp", "fleet"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .with_variable(
            with_all(
                tag_values_variable(
                    "site", "Site", "Narrows the host list to one site.", f"tag_values({_INDEX_METRIC}, site)"
                )
            )
        )
        .with_variable(
            tag_values_variable("host", "Host", "The host shown.", f"tag_values({_INDEX_METRIC}, host, site=$site)")
        )
        .with_panel(
            time_series(
                "CPU utilisation",
                "CPU utilisation of the host (sys.cpu.util), per application tag.",
                "percent",
                query("A", "sys.cpu.util").tags(_HOST).downsample("avg"),
            )
            .min(0)
            .max(100)
        )
        .with_panel(
            time_series(
                "CPU cores",
                "Cores the host reports (sys.cpu.cores).",
                "short",
                query("A", "sys.cpu.cores").tags(_HOST).downsample("max"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Memory used",
                "Memory in use (sys.mem.used_mb).",
                "decmbytes",
                query("A", "sys.mem.used_mb").tags(_HOST).downsample("avg"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Load average",
                "System load average (sys.load.avg): average and peak per interval.",
                "short",
                query("A", "sys.load.avg").tags(_HOST).downsample("avg").alias("average"),
                query("B", "sys.load.avg").tags(_HOST).downsample("max").alias("peak"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Request rate",
                "Requests per second on the host, per application (rate of app.requests.count).",
                "reqps",
                query("A", "app.requests.count", "sum")
                .tags({**_HOST, "app": "*"})
                .downsample("max")
                .rate(counter=True)
                .alias("$tag_app"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Network throughput",
                "Bytes per second received and sent (rates of sys.net.bytes_in / bytes_out).",
                "Bps",
                query("A", "sys.net.bytes_in", "sum").tags(_HOST).downsample("max").rate(counter=True).alias("in"),
                query("B", "sys.net.bytes_out", "sum").tags(_HOST).downsample("max").rate(counter=True).alias("out"),
            ).min(0)
        )
    )
