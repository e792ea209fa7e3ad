"""Silver and the rollups as partitioned assets: each run overwrites exactly its time window.

silver (day) ← bronze; rollup_1m ← silver; rollup_1h ← rollup_1m; rollup_1d ← rollup_1h;
rollup_1w (ISO week), rollup_1mo (month), rollup_1y (year) ← rollup_1d. Each rollup level is
also published to the history TSDB, replacing its partition there. Spark assets take a whole
backfill range in one run (BackfillPolicy.single_run). The assets are built from the ``batch``
section (``build_batch_assets``): their partitions start at ``batch.start_date``.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.batch import partitions
from rtdp_dagster.batch.automation import coarse_rollup_condition
from rtdp_dagster.batch.history import publish_partitions
from rtdp_dagster.batch.intervals import BUCKET_DATE, interval
from rtdp_dagster.batch.rollups import ROLLUP_STATS_COLUMNS, rollup_columns, rollup_points, rollup_rollups
from rtdp_dagster.batch.silver import SILVER_COLUMNS, SILVER_STATS_COLUMNS, series_key_column, silver_for_days
from rtdp_dagster.batch.writes import write_days
from rtdp_dagster.config import BatchConfig
from rtdp_dagster.dagster_common import OWNERS
from rtdp_dagster.master_data.lookup import master_data_tags, with_master_data
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.resources import DeltaTablesResource, TsdbResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.spark.session import delta_version
from rtdp_dagster.streaming.assets import bronze

GROUP = "batch"
SINGLE_RUN = dg.BackfillPolicy.single_run()
# A week, month or year also covers days before the start date or not yet closed: those are absent,
# not an error (a backfill of this year must not be refused for them).
TOLERANT_MAPPING = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)


def enriched_silver(spark: SparkSession, silver: DataFrame, master_path: str) -> DataFrame:
    """Site and app of the master-data version valid at each point's time, into its tags."""
    points = with_master_data(silver, read_table(spark, master_path), valid_at="ums_ts_")
    tags = master_data_tags()
    return points.withColumn("tags", tags).withColumn("series_key", series_key_column(F.col("metric"), tags))


def _metadata(spark: SparkSession, path: str, rows: int, window: dg.TimeWindow, started: float) -> dict:
    return {
        "rows": rows,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "delta_version": delta_version(spark, path),
        "table_path": dg.MetadataValue.path(path),
        "duration_s": round(time.monotonic() - started, 2),
    }


def build_silver(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """Silver, partitioned by the batch layer's days."""

    @dg.asset(
        partitions_def=daily,
        deps=[bronze],
        backfill_policy=SINGLE_RUN,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"spark", "delta"},
        description="The truth per UTC day: bronze of that day, one row per point_key with the highest ums_id_, "
        "retractions removed, site/app from the master data valid at the point's time. A run replaces exactly its "
        "days.",
    )
    def silver(
        context: dg.AssetExecutionContext,
        spark: LazyPySparkResource,
        delta: DeltaTablesResource,
        platform: PlatformConfigResource,
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        session = spark.spark_session
        window = context.partition_time_window
        days = partitions.days_of(window)
        bronze_frame = session.read.format("delta").load(delta.table_path("bronze"))
        master_table = platform.settings().master_data.table
        enriched = enriched_silver(session, silver_for_days(bronze_frame, days), delta.table_path(master_table))
        frame = enriched.select(*SILVER_COLUMNS)
        path = delta.table_path("silver")
        write_days(frame, path, days, "event_date", stats_columns=SILVER_STATS_COLUMNS)
        rows = session.read.format("delta").load(path).where(F.col("event_date").isin(days)).count()
        context.log.info(f"silver: {rows} rows for {len(days)} day(s)")
        return dg.MaterializeResult(metadata=_metadata(session, path, rows, window, started))

    return silver


def _read_days(session: SparkSession, path: str, column: str, days: Sequence) -> DataFrame:
    return session.read.format("delta").load(path).where(F.col(column).isin(list(days)))


def build_rollup(
    level: str, source: str, partitions_def: dg.PartitionsDefinition, coarse_automation: dg.AutomationCondition
) -> dg.AssetsDefinition:
    """The asset of one rollup level, computed from the next finer level (or silver)."""
    name = f"rollup_{level}"
    source_column = "event_date" if source == "silver" else BUCKET_DATE

    coarse = not isinstance(partitions_def, dg.DailyPartitionsDefinition)

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        deps=[dg.AssetDep(source, partition_mapping=TOLERANT_MAPPING)] if coarse else [source],
        # A week, month or year is recomputed whenever one of its days changes, closed or not.
        automation_condition=coarse_automation if coarse else None,
        backfill_policy=SINGLE_RUN,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"spark", "delta", "opentsdb"},
        description=f"{level} rollup per series (count, sum, min, max, first, last; avg = sum/count) from {source}, "
        f"exact at every level; published to the history TSDB with tags rollup={level}, agg=..., part=<partition>.",
    )
    def rollup(
        context: dg.AssetExecutionContext,
        spark: LazyPySparkResource,
        delta: DeltaTablesResource,
        history_tsdb: TsdbResource,
        platform: PlatformConfigResource,
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        session = spark.spark_session
        window = context.partition_time_window
        days = partitions.days_of(window)
        finer = _read_days(session, delta.table_path(source), source_column, days)
        frame = rollup_points(finer, level) if source == "silver" else rollup_rollups(finer, level)
        frame = frame.select(*rollup_columns(level))
        path = delta.table_path(name)
        spec = interval(level)
        if spec.partition_column == BUCKET_DATE:
            write_days(frame, path, days, BUCKET_DATE, stats_columns=ROLLUP_STATS_COLUMNS)
        else:
            start_ms, end_ms = partitions.ms(window.start), partitions.ms(window.end)
            frame.write.format("delta").mode("overwrite").option(
                "replaceWhere", f"bucket_start >= {start_ms} AND bucket_start < {end_ms}"
            ).option("delta.dataSkippingStatsColumns", ",".join(ROLLUP_STATS_COLUMNS)).partitionBy(
                spec.partition_column
            ).save(path)
        table = session.read.format("delta").load(path)
        published = 0
        if level in platform.settings().batch.history_levels:
            # Every partition of the run (a backfill's whole range) in one Spark job.
            windows = {key: partitions_def.time_window_for_partition_key(key) for key in context.partition_keys}  # type: ignore[attr-defined]
            parts = [(key, partitions.ms(w.start), partitions.ms(w.end)) for key, w in windows.items()]
            published = publish_partitions(table, level, parts, history_tsdb.url, history_tsdb.put_http_url)
        in_window = table.where(
            (F.col("bucket_start") >= partitions.ms(window.start)) & (F.col("bucket_start") < partitions.ms(window.end))
        ).count()
        metadata = _metadata(session, path, in_window, window, started)
        metadata["history_points"] = published
        return dg.MaterializeResult(metadata=metadata)

    return rollup


@dataclass(frozen=True)
class BatchAssets:
    silver: dg.AssetsDefinition
    # 1m, 1h, 1d (daily), then 1w, 1mo, 1y.
    rollups: list[dg.AssetsDefinition]

    def all(self) -> list[dg.AssetsDefinition]:
        return [self.silver, *self.rollups]


def build_batch_assets(batch: BatchConfig) -> BatchAssets:
    """Silver and the rollups, partitioned from ``batch.start_date``; the coarse rollups follow their days
    while retention keeps them."""
    parts = partitions.batch_partitions(batch.start_date)
    coarse_automation = coarse_rollup_condition(batch.retention_days)
    levels = [
        ("1m", "silver", parts.daily),
        ("1h", "rollup_1m", parts.daily),
        ("1d", "rollup_1h", parts.daily),
        ("1w", "rollup_1d", parts.weekly),
        ("1mo", "rollup_1d", parts.monthly),
        ("1y", "rollup_1d", parts.yearly),
    ]
    return BatchAssets(
        silver=build_silver(parts.daily),
        rollups=[build_rollup(level, source, window, coarse_automation) for level, source, window in levels],
    )


# Selected by key, so the job needs no assets built: the partitions come from the assets of the location.
daily_batch_job = dg.define_asset_job(
    "daily_batch_job",
    selection=dg.AssetSelection.assets("silver", "rollup_1m", "rollup_1h", "rollup_1d"),
    description="Silver and the 1m/1h/1d rollups of one day.",
)
