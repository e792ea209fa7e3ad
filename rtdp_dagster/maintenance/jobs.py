"""The upkeep jobs: realtime-TSDB repair and Delta maintenance (scheduled in ``defs.py``)."""

import datetime as dt
import time

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pyspark.errors import PySparkException

from rtdp_dagster.maintenance.delta_upkeep import maintain_table, table_plans
from rtdp_dagster.maintenance.tsdb_repair import TSDB_REPAIR_DONE, repair_realtime
from rtdp_dagster.resources import DeltaTablesResource, TsdbResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.streaming.tables import BRONZE, STREAM_PROGRESS, TSDB_REPAIR

# Runs that write the tables upkeep rewrites: a daily or late-data run, a backfill, a replay.
WRITER_JOBS = frozenset({"daily_batch_job", "kappa_replay_job"})
WRITTEN_ASSETS = frozenset({"silver", "rollup_1m", "rollup_1h", "rollup_1d", "rollup_1w", "rollup_1mo", "rollup_1y"})
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.op(
    description="Re-puts the points the stream could not write to the realtime TSDB (recorded in tsdb_repair), "
    "from bronze: latest version, no retractions, enriched as the stream does; only points the TSDB lacks."
)
def repair_realtime_tsdb(
    context: dg.OpExecutionContext,
    spark: LazyPySparkResource,
    delta: DeltaTablesResource,
    realtime_tsdb: TsdbResource,
    platform: PlatformConfigResource,
) -> dg.Output[dict]:
    started = time.monotonic()
    settings = platform.settings()
    result = repair_realtime(
        spark.spark_session,
        bronze_path=delta.table_path(BRONZE),
        repair_path=delta.table_path(TSDB_REPAIR),
        done_path=delta.table_path(TSDB_REPAIR_DONE),
        progress_path=delta.table_path(STREAM_PROGRESS),
        master_path=delta.table_path(settings.master_data.table),
        query_url=realtime_tsdb.url,
        put_http_url=realtime_tsdb.put_http_url,
        timeout_s=realtime_tsdb.timeout_s,
        chunk=settings.stream.tsdb_put_chunk,
    )
    metadata = {**result.metadata(), "duration_s": round(time.monotonic() - started, 2)}
    context.log.info(f"tsdb repair: {metadata}")
    if result.failed:
        context.log.warning(f"{result.failed} points could not be put; their failures stay pending for the next run")
    return dg.Output(result.metadata(), metadata=metadata)


@dg.job(name="tsdb_repair_job", description="Re-puts the points the stream could not write to the realtime TSDB.")
def tsdb_repair_job() -> None:
    repair_realtime_tsdb()


def writers_in_progress(instance: dg.DagsterInstance, own_run_id: str) -> list[str]:
    """Ids of active runs that write silver, the rollups or bronze (other than this one)."""
    busy = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_ACTIVE)):
        assets = {key.to_user_string() for key in run.asset_selection or ()}
        if run.run_id != own_run_id and (run.job_name in WRITER_JOBS or assets & WRITTEN_ASSETS):
            busy.append(run.run_id)
    return busy


@dg.op(
    description="Retention, OPTIMIZE (partitions old enough) and VACUUM of bronze, quarantine, stream_progress, "
    "silver and every rollup table; skipped while a run writes them."
)
def maintain_delta_tables(
    context: dg.OpExecutionContext,
    spark: LazyPySparkResource,
    delta: DeltaTablesResource,
    platform: PlatformConfigResource,
) -> dg.Output[dict]:
    busy = writers_in_progress(context.instance, context.run_id)
    if busy:
        context.log.warning(f"skipped: runs writing the batch tables are in progress: {busy}")
        return dg.Output({"skipped": True}, metadata={"skipped_for_runs": busy})
    settings = platform.settings()
    upkeep, today = settings.maintenance, dt.datetime.now(dt.UTC).date()
    session = spark.spark_session
    tables, errors = [], {}
    for plan in table_plans(settings.batch, upkeep):
        started = time.monotonic()
        try:
            figures = maintain_table(
                session,
                delta.table_path(plan.name),
                plan,
                today,
                upkeep.optimize_min_age_days,
                upkeep.vacuum_retain_hours,
                # The platform's parallelism knob: the listing needs no more tasks than the cluster has cores.
                listing_tasks=settings.spark.shuffle_partitions,
            )
        except PySparkException as exc:  # e.g. a conflicting commit: the other tables still get their upkeep
            errors[plan.name] = str(exc)[:500]
            continue
        figures["duration_s"] = round(time.monotonic() - started, 2)
        context.log.info(f"delta upkeep: {figures}")
        tables.append(figures)
    present = [t for t in tables if not t.get("absent")]
    metadata = {
        "tables": dg.MetadataValue.json(tables),
        "files_before": sum(t["files_before"] for t in present),
        "files_after": sum(t["files_after"] for t in present),
        "rows_deleted": sum(t["rows_deleted"] for t in present),
        "files_vacuumed": sum(t["files_vacuumed"] for t in present),
    }
    if errors:
        raise dg.Failure(
            description=f"delta upkeep failed for {sorted(errors)}",
            metadata={**metadata, "errors": dg.MetadataValue.json(errors)},
        )
    return dg.Output({"tables": tables}, metadata=metadata)


@dg.job(name="delta_maintenance_job", description="Delta retention, compaction and VACUUM of the platform's tables.")
def delta_maintenance_job() -> None:
    maintain_delta_tables()
