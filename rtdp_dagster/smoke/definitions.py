"""A code location for the smoke assets (Kafka → Delta → realtime TSDB), kept out of the production one.

The production location's definitions plus the smoke assets and job, on the same resources.
"""

import dagster as dg

from rtdp_dagster import definitions as production
from rtdp_dagster.smoke.assets import smoke_delta_points, smoke_job, smoke_kafka_points, smoke_realtime_tsdb

defs = dg.Definitions.merge(
    production.defs,
    dg.Definitions(assets=[smoke_kafka_points, smoke_delta_points, smoke_realtime_tsdb], jobs=[smoke_job]),
)
