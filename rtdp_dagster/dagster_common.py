"""What every domain's Dagster definitions share: who owns the assets, and the one way a job is scheduled."""

import dagster as dg

OWNERS = ["team:platform"]


# ``job`` is left unannotated: the asset-job type dg.define_asset_job returns is not exported by dagster.
def build_schedule(job, cron_schedule: str, *, partitioned: bool = False, running: bool = True):
    """A schedule named ``<job>_schedule`` on a UTC cron; a daily-partitioned job runs the day the tick closes.

    Running by default: late data is only caught and tables only kept up if their jobs run.
    """
    status = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
    if partitioned:
        # Dagster derives a time-partitioned job's cron from its partitions: it takes only the time of day.
        minute, hour, *rest = cron_schedule.split()
        if rest != ["*", "*", "*"]:
            raise ValueError(
                f"{job.name}: a daily-partitioned job runs on a daily cron 'M H * * *', not {cron_schedule!r}"
            )
        return dg.build_schedule_from_partitioned_job(
            job, minute_of_hour=int(minute), hour_of_day=int(hour), default_status=status
        )
    return dg.ScheduleDefinition(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=status,
    )
