"""Platform operations: collection per source and wave, the stream's health, data quality."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import timeseries

from rtdp_dagster.grafana.opentsdb import TagFilter
from rtdp_dagster.grafana.panels import pass_fail_timeline, query, time_series

UID = "rtdp-platform-operations"
FILE_NAME = "platform-operations.json"
# rtdp.collect.* (rtdp_dagster/collection/metrics.py): one point per collected window.
_PER_SOURCE_WAVE = {"source": "*", "wave": "*"}
# rtdp.stream.* (rtdp_dagster/streaming/progress.py): one point per micro-batch and query.
_PER_QUERY = {"query": "*"}


def _collect(title: str, description: str, figure: str) -> timeseries.Panel:
    return time_series(
        title,
        description,
        "short",
        query("A", f"rtdp.collect.{figure}", "sum")
        .tags(_PER_SOURCE_WAVE)
        .downsample("sum", fill="zero")
        .alias("$tag_source wave $tag_wave"),
        width=8,
    ).min(0)


def _stream(title: str, description: str, unit: str, figure: str, downsample: str, width: int = 8) -> timeseries.Panel:
    return time_series(
        title,
        description,
        unit,
        query("A", f"rtdp.stream.{figure}", "sum" if downsample == "sum" else "max")
        .tags(_PER_QUERY)
        .downsample(downsample)
        .alias("$tag_query"),
        width=width,
    ).min(0)


def build() -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard("Platform operations")
        .uid(UID)
        .description("Collection per source and wave, the speed layer's health, data-quality checks.")
        .tags(["rtdp", "operations"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("utc")
        .with_row(dashboard_builders.Row("Collection"))
        .with_panel(
            _collect(
                "Points collected per source and wave",
                "Rows read from each source by each wave, summed per interval (rtdp.collect.rows_read).",
                "rows_read",
            )
        )
        .with_panel(
            _collect(
                "New points per source and wave",
                "Rows not published by an earlier wave (rtdp.collect.rows_new).",
                "rows_new",
            )
        )
        .with_panel(
            _collect(
                "Dead-lettered points per source and wave",
                "Rows sent to rtdp.deadletter as invalid (rtdp.collect.rows_dead_lettered).",
                "rows_dead_lettered",
            )
        )
        .with_panel(
            time_series(
                "Late points caught by waves 2 and 3",
                "Points the catch-up waves found that wave 1 had missed (rtdp.collect.rows_new, wave 2 or 3).",
                "short",
                query("A", "rtdp.collect.rows_new", "sum")
                .filter(TagFilter("wave", "2|3", "literal_or", group_by=True))
                .filter(TagFilter("source", "*", "wildcard", group_by=True))
                .downsample("sum", fill="zero")
                .alias("$tag_source wave $tag_wave"),
                width=24,
            ).min(0)
        )
        .with_row(dashboard_builders.Row("Stream"))
        .with_panel(
            _stream(
                "Kafka lag",
                "Records on Kafka not yet read by each query after its micro-batch "
                "(rtdp.stream.kafka_lag, peak per interval).",
                "short",
                "kafka_lag",
                "max",
            )
        )
        .with_panel(
            _stream(
                "Micro-batch duration",
                "Duration of each query's micro-batches (rtdp.stream.batch_duration_ms, peak per interval).",
                "ms",
                "batch_duration_ms",
                "max",
            )
        )
        .with_panel(
            _stream(
                "End-to-end latency",
                "Time from a record's arrival on Kafka to its write to the "
                "realtime TSDB, worst per micro-batch (rtdp.stream.latency_max_ms, peak per interval).",
                "ms",
                "latency_max_ms",
                "max",
            )
        )
        .with_panel(
            time_series(
                "Input and processed rates",
                "Rows per second arriving on Kafka and processed by each query "
                "(rtdp.stream.input_rows_per_s, rtdp.stream.processed_rows_per_s).",
                "rowsps",
                query("A", "rtdp.stream.input_rows_per_s").tags(_PER_QUERY).downsample("avg").alias("$tag_query input"),
                query("B", "rtdp.stream.processed_rows_per_s")
                .tags(_PER_QUERY)
                .downsample("avg")
                .alias("$tag_query processed"),
                width=8,
            ).min(0)
        )
        .with_panel(
            _stream(
                "Quarantined records",
                "Invalid records written to the quarantine table (rtdp.stream.quarantined, per interval).",
                "short",
                "quarantined",
                "sum",
            )
        )
        .with_panel(
            _stream(
                "Late for realtime",
                "Points older than the watermark: in bronze, not in the realtime "
                "TSDB (rtdp.stream.late_for_realtime, per interval).",
                "short",
                "late_for_realtime",
                "sum",
            )
        )
        .with_panel(
            _stream(
                "TSDB write failures",
                "Points the stream could not write to the realtime TSDB, left "
                "to the repair job (rtdp.stream.tsdb_failed, per interval).",
                "short",
                "tsdb_failed",
                "sum",
            )
        )
        .with_row(dashboard_builders.Row("Data quality"))
        .with_panel(
            pass_fail_timeline(
                "DQ check status",
                "Result of each data-quality check over time (rtdp.dq.check_status: 1 pass, 0 fail; "
                "the worst result per interval).",
                query("A", "rtdp.dq.check_status", "min")
                .tags({"asset": "*", "check": "*", "severity": "*"})
                .downsample("min")
                .alias("$tag_asset / $tag_check ($tag_severity)"),
            )
        )
        .with_panel(
            time_series(
                "Failing rows per check",
                "Rows failing each data-quality check (rtdp.dq.failing_rows).",
                "short",
                query("A", "rtdp.dq.failing_rows", "max")
                .tags({"asset": "*", "check": "*"})
                .downsample("max")
                .alias("$tag_asset / $tag_check"),
            ).min(0)
        )
        .with_panel(
            time_series(
                "Reconciliation: unexplained differences",
                "Points lost or gained along the path that no quarantine, "
                "dead letter or de-duplication explains, per stage (rtdp.dq.recon.unexplained).",
                "short",
                query("A", "rtdp.dq.recon.unexplained", "max")
                .tags({"stage": "*"})
                .downsample("max")
                .alias("$tag_stage"),
            )
        )
    )
