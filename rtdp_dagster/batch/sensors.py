"""The late-data sensor: bronze arrivals for days already in silver become re-runs of those days.

The cursor is the last bronze commit version considered. Each tick reads the commits after it
(from the Delta log, no Spark), finds event days that are closed and already materialized in
silver, and requests the daily batch job for them (silver and the 1m/1h/1d rollups; the week,
month and year rollups follow by their automation condition, ``batch/automation.py``). At most
``batch.late_days_per_tick`` days per tick: the cursor only moves past commits whose days were all
requested.
"""

import datetime as dt

import dagster as dg

from rtdp_dagster.batch.assets import daily_batch_job
from rtdp_dagster.batch.delta_log import days_added_by_version
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.resources.platform import PlatformConfigResource

MAX_COMMITS_PER_TICK = 500


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


@dg.sensor(
    job=daily_batch_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs closed days of silver and their rollups when late points land in bronze.",
)
def late_data_sensor(
    context: dg.SensorEvaluationContext, delta: DeltaTablesResource, platform: PlatformConfigResource
) -> dg.SensorResult:
    after = int(context.cursor) if context.cursor else -1
    commits = days_added_by_version(delta.table_path("bronze"), after, MAX_COMMITS_PER_TICK)
    if not commits:
        return dg.SensorResult(skip_reason="no new bronze commits")
    budget = platform.settings().batch.late_days_per_tick
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("silver"))
    today = _today()
    requested: dict[str, int] = {}
    cursor = after
    for version, days in sorted(commits.items()):
        late = sorted(day for day in days if day < today and day in materialized and day not in requested)
        room = budget - len(requested)
        for day in late[:room]:
            requested[day] = version
        if len(late) > room:
            # Not every day of this commit fit: it is read again next tick; the days already
            # requested come back with the same run key, which Dagster does not launch twice.
            break
        cursor = version
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                partition_key=day, run_key=f"late-{day}-bronze-v{version}", tags={"rtdp/trigger": "late-data"}
            )
            for day, version in sorted(requested.items())
        ],
        cursor=str(cursor),
    )
