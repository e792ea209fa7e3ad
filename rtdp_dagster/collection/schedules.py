"""Schedules of the catch-up waves."""

import dagster as dg


def build_wave_schedule(job: dg.JobDefinition, cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=f"{job.name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        # Late data is only caught if the waves run: on by default.
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
