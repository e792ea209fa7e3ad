"""The speed layer's Dagster definitions: the stream's tables as observed assets, and its health check every 5 minutes.

The stream itself runs outside Dagster (``rtdp stream``).
"""

import dagster as dg

from rtdp_dagster.dagster_common import build_schedule
from rtdp_dagster.streaming.assets import (
    bronze,
    kafka_points,
    quarantine,
    realtime_tsdb,
    stream_health_job,
    stream_heartbeat_fresh,
    stream_progress,
)

defs = dg.Definitions(
    assets=[kafka_points, bronze, quarantine, realtime_tsdb, stream_progress],
    asset_checks=[stream_heartbeat_fresh],
    jobs=[stream_health_job],
    schedules=[build_schedule(stream_health_job, "*/5 * * * *")],
)
