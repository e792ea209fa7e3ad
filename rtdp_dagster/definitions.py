"""The rtdp code location: each domain's definitions, merged; the one place settings are loaded at import.

Settings come from rtdp.yaml (or ``$RTDP_CONFIG``) and RTDP_* variables, once; each domain gets its
section. The smoke assets are not part of this location (``rtdp_dagster.smoke.definitions``).
"""

import dagster as dg

from rtdp_dagster.batch import defs as batch
from rtdp_dagster.collection import defs as collection
from rtdp_dagster.config import load_settings
from rtdp_dagster.maintenance import defs as maintenance
from rtdp_dagster.quality import defs as quality
from rtdp_dagster.quality.freshness import with_freshness_policies
from rtdp_dagster.replay import defs as replay
from rtdp_dagster.resources import build_resources
from rtdp_dagster.streaming import defs as streaming

settings = load_settings()

defs = with_freshness_policies(
    dg.Definitions.merge(
        collection.build_defs(settings.collection),
        streaming.defs,
        batch.build_defs(settings.batch),
        quality.build_defs(settings.quality),
        maintenance.build_defs(settings.maintenance),
        replay.defs,
        dg.Definitions(
            resources=build_resources(settings),
            # Steps do their heavy work on the Spark Connect server, Kafka or the TSDBs: a process per step
            # would only add seconds of Python start-up each on two cores.
            executor=dg.in_process_executor,
        ),
    ),
    settings.quality.freshness,
)
