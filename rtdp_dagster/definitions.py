"""The rtdp code location: assembles each domain's assets, jobs, schedules and sensors."""

import dagster as dg

from rtdp_dagster.config import load_settings
from rtdp_dagster.resources import build_resources
from rtdp_dagster.smoke import assets as smoke

settings = load_settings()

defs = dg.Definitions(
    assets=[smoke.smoke_kafka_points, smoke.smoke_delta_points, smoke.smoke_realtime_tsdb],
    jobs=[smoke.smoke_job],
    resources=build_resources(settings),
)
