"""The batch layer's Dagster definitions: silver and the rollups, the daily job and schedule, the late-data sensor."""

import dagster as dg

from rtdp_dagster.batch.assets import build_batch_assets, daily_batch_job
from rtdp_dagster.batch.sensors import late_data_sensor
from rtdp_dagster.config import BatchConfig
from rtdp_dagster.dagster_common import build_schedule


def build_defs(batch: BatchConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=build_batch_assets(batch).all(),
        jobs=[daily_batch_job],
        # Yesterday's partition at 00:30 UTC; created stopped (Dagster's default for partitioned schedules).
        schedules=[build_schedule(daily_batch_job, "30 0 * * *", partitioned=True, running=False)],
        sensors=[late_data_sensor],
    )
