"""The upkeep's Dagster definitions: realtime-TSDB repair and Delta maintenance, each on its cron."""

import dagster as dg

from rtdp_dagster.config import MaintenanceConfig
from rtdp_dagster.dagster_common import build_schedule
from rtdp_dagster.maintenance.jobs import delta_maintenance_job, tsdb_repair_job


def build_defs(maintenance: MaintenanceConfig) -> dg.Definitions:
    return dg.Definitions(
        jobs=[tsdb_repair_job, delta_maintenance_job],
        schedules=[
            build_schedule(tsdb_repair_job, maintenance.tsdb_repair_cron),
            build_schedule(delta_maintenance_job, maintenance.delta_cron),
        ],
    )
