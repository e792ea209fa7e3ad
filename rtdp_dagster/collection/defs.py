"""Collection's Dagster definitions: the collection log asset, and the wave-2/wave-3 catch-up jobs per source.

Wave 1 runs outside Dagster (``rtdp ingest``).
"""

import dagster as dg

from rtdp_dagster.collection.assets import collection_log, collection_log_job
from rtdp_dagster.collection.jobs import build_wave_job
from rtdp_dagster.config import CollectionConfig
from rtdp_dagster.dagster_common import build_schedule


def build_defs(collection: CollectionConfig) -> dg.Definitions:
    wave2, wave3 = (build_wave_job(wave, collection.sources) for wave in (2, 3))
    return dg.Definitions(
        assets=[collection_log],
        jobs=[collection_log_job, wave2, wave3],
        schedules=[
            build_schedule(collection_log_job, "*/5 * * * *"),
            build_schedule(wave2, collection.wave2_cron),
            build_schedule(wave3, collection.wave3_cron),
        ],
    )
