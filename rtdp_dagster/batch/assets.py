"""Silver and the rollups as partitioned assets: each run overwrites exactly its time window.

silver (day) ← bronze; rollup_1m ← silver; rollup_1h ← rollup_1m; rollup_1d ← rollup_1h;
rollup_1w (ISO week), rollup_1mo (month), rollup_1y (year) ← rollup_1d. Each rollup level is
also published to the history TSDB, replacing its partition there. Spark assets take a whole
backfill range in one run (BackfillPolicy.single_run). All of them share the ``batch_writes``
pool: the instance (``stack/dagster_home.py``) keeps a run that writes them queued while another
one runs, so two runs never write the same partitions (nor create a table) at once. The assets are
built from the ``batch`` section (``build_batch_assets``): their partitions start at
``batch.start_date``.
"""

from dataclasses import dataclass

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from rtdp_dagster.batch import partitions
from rtdp_dagster.batch.automation import coarse_rollup_condition
from rtdp_dagster.batch.delta_log import latest_version
from rtdp_dagster.batch.history import publish_partitions
from rtdp_dagster.batch.steps import StepTimes, materialize_rollup, materialize_silver
from rtdp_dagster.batch.writes import Commit
from rtdp_dagster.config import BatchConfig
from rtdp_dagster.dagster_common import OWNERS
from rtdp_dagster.resources import DeltaTablesResource, TsdbResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.streaming.assets import bronze

GROUP = "batch"
SINGLE_RUN = dg.BackfillPolicy.single_run()
# One slot (dagster.yaml's pools.default_limit, run granularity): runs of these assets take turns,
# waiting in the queue rather than in a run slot.
POOL = "batch_writes"
# Silver's metadata: the bronze version its read was pinned to. The late-data sensor folds arrivals
# up to it into that materialization instead of re-running the day; reconciliation compares with it.
BRONZE_VERSION = "bronze_version"
# A week, month or year also covers days before the start date or not yet closed: those are absent,
# not an error (a backfill of this year must not be refused for them).
TOLERANT_MAPPING = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)


def _metadata(path: str, commit: Commit, window: dg.TimeWindow, times: StepTimes) -> dict:
    """The commit (rows, version, files from the write itself) and where the time went, per step:
    ``session`` (the Spark Connect client: started by a run's first step, reused by the others),
    ``plan``, ``write``, ``commit`` (``batch/steps.py``) and ``publish`` (history TSDB)."""
    return {
        "rows": commit.rows,
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "delta_version": commit.version,
        "files_written": commit.files,
        "bytes_written": commit.bytes,
        "table_path": dg.MetadataValue.path(path),
        **{f"{name}_s": dg.MetadataValue.float(value) for name, value in times.seconds.items()},
        "duration_s": round(times.total(), 2),
    }


def build_silver(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """Silver, partitioned by the batch layer's days."""

    @dg.asset(
        partitions_def=daily,
        deps=[bronze],
        backfill_policy=SINGLE_RUN,
        pool=POOL,
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
        times = StepTimes()
        with times.step("session"):
            session = spark.spark_session
        window = context.partition_time_window
        days = partitions.days_of(window)
        path = delta.table_path("silver")
        master_path = delta.table_path(platform.settings().master_data.table)
        bronze_path = delta.table_path("bronze")
        # The read is pinned to it: the late-data sensor and reconciliation know exactly what silver saw.
        bronze_version = latest_version(bronze_path)
        commit = materialize_silver(session, bronze_path, master_path, path, days, times, bronze_version)
        context.log.info(f"silver: {commit.rows} rows for {len(days)} day(s); seconds per step {times.seconds}")
        metadata = _metadata(path, commit, window, times)
        metadata[BRONZE_VERSION] = bronze_version
        return dg.MaterializeResult(metadata=metadata)

    return silver


def build_rollup(
    level: str, source: str, partitions_def: dg.PartitionsDefinition, coarse_automation: dg.AutomationCondition
) -> dg.AssetsDefinition:
    """The asset of one rollup level, computed from the next finer level (or silver)."""
    name = f"rollup_{level}"
    coarse = not isinstance(partitions_def, dg.DailyPartitionsDefinition)

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        deps=[dg.AssetDep(source, partition_mapping=TOLERANT_MAPPING)] if coarse else [source],
        # A week, month or year is recomputed whenever one of its days changes, closed or not.
        automation_condition=coarse_automation if coarse else None,
        backfill_policy=SINGLE_RUN,
        pool=POOL,
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
        times = StepTimes()
        with times.step("session"):
            session = spark.spark_session
        window = context.partition_time_window
        days = partitions.days_of(window)
        path = delta.table_path(name)
        window_ms = (partitions.ms(window.start), partitions.ms(window.end))
        commit = materialize_rollup(
            session, level, delta.table_path(source), source == "silver", path, days, window_ms, times
        )
        published = 0
        if level in platform.settings().batch.history_levels:
            with times.step("publish"):
                # Every partition of the run (a backfill's whole range) in one Spark job.
                windows = {key: partitions_def.time_window_for_partition_key(key) for key in context.partition_keys}  # type: ignore[attr-defined]
                parts = [(key, partitions.ms(w.start), partitions.ms(w.end)) for key, w in windows.items()]
                table = session.read.format("delta").load(path)
                published = publish_partitions(table, level, parts, history_tsdb.url, history_tsdb.put_http_url)
        context.log.info(f"{name}: {commit.rows} rows; seconds per step {times.seconds}")
        metadata = _metadata(path, commit, window, times)
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
