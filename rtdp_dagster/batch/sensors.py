"""The late-data sensor: bronze arrivals for days already in silver become re-runs of those days.

The cursor is the last bronze commit version considered. Each tick reads the commits after it
(from the Delta log, no Spark), finds event days that are closed and already materialized in
silver, and requests the daily batch job for them (silver and the 1m/1h/1d rollups; the week,
month and year rollups follow by their automation condition, ``batch/automation.py``). At most
``batch.late_days_per_tick`` days per tick.

A day that a run or a backfill is still computing (``busy_days.py``) waits: it is not requested
beside that run, and the cursor stays before its commit, so the next ticks read it again. Once the
run is done, a commit its silver read already held (up to silver's ``bronze_version``) is folded
into it; a later one is re-run. The cursor only moves past commits whose days were all requested,
folded or not late.
"""

import datetime as dt

import dagster as dg

from rtdp_dagster.batch.assets import BRONZE_VERSION, daily_batch_job
from rtdp_dagster.batch.busy_days import busy_days
from rtdp_dagster.batch.delta_log import days_added_by_version
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.resources.platform import PlatformConfigResource

MAX_COMMITS_PER_TICK = 500
SILVER = dg.AssetKey("silver")


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def silver_read_version(instance: dg.DagsterInstance, day: str) -> int:
    """The bronze version the latest silver materialization of the day read (-1: unknown)."""
    result = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=SILVER, asset_partitions=[day]), limit=1)
    if not result.records:
        return -1
    materialization = result.records[0].asset_materialization
    value = materialization.metadata.get(BRONZE_VERSION) if materialization else None
    return int(value.value) if isinstance(value, dg.IntMetadataValue) and value.value is not None else -1


@dg.sensor(
    job=daily_batch_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs closed days of silver and their rollups when late points land in bronze; "
    "a day still being computed by a run or a backfill waits for it.",
)
def late_data_sensor(
    context: dg.SensorEvaluationContext, delta: DeltaTablesResource, platform: PlatformConfigResource
) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else -1
    commits = days_added_by_version(delta.table_path("bronze"), after, MAX_COMMITS_PER_TICK)
    if not commits:
        return dg.SensorResult(skip_reason="no new bronze commits")
    budget = platform.settings().batch.late_days_per_tick
    # Busy first: a run that finishes in between has its materialization recorded by then.
    busy = busy_days(context.instance)
    materialized = context.instance.get_materialized_partitions(SILVER)
    today = _today()
    read_versions: dict[str, int] = {}
    requested: dict[str, int] = {}
    waiting: set[str] = set()
    cursor, held = after, False
    for version, days in sorted(commits.items()):
        done = True
        for day in sorted(days):
            if day >= today or day in requested:
                # Not closed (the daily schedule reads it), or already re-run by this tick's request.
                continue
            if busy.covers(day):
                waiting.add(day)
                done = False
            elif day not in materialized:
                continue  # its first materialization reads this commit
            elif version <= read_versions.setdefault(day, silver_read_version(context.instance, day)):
                continue  # folded: silver's latest read of the day already held this commit
            elif len(requested) < budget:
                requested[day] = version
            else:
                done = False  # over the budget: read again next tick
        # Later commits are still read (their days need not wait), but the cursor stays before this one.
        held = held or not done
        if not held:
            cursor = version
    # A day requested again next tick (its commit is read again) keeps its run key, launched once.
    run_requests = [
        dg.RunRequest(partition_key=day, run_key=f"late-{day}-bronze-v{version}", tags={"rtdp/trigger": "late-data"})
        for day, version in sorted(requested.items())
    ]
    skip_reason = None
    if not run_requests:
        skip_reason = "no late days to re-run"
        if waiting:
            skip_reason = f"waiting for {', '.join(busy.holders)} to finish {', '.join(sorted(waiting))}"
    return dg.SensorResult(run_requests=run_requests, skip_reason=skip_reason, cursor=str(cursor))
