"""The data-quality Dagster definitions: the checks of bronze, silver and the rollups, their jobs and
schedule, silver's freshness check with its sensor. The freshness policies of other domains' assets are
attached to the whole location (``freshness.with_freshness_policies``)."""

import dagster as dg

from rtdp_dagster.config import QualityConfig
from rtdp_dagster.dagster_common import build_schedule
from rtdp_dagster.quality.checks import bronze_quality_job, quality_checks, reconciliation_job
from rtdp_dagster.quality.freshness import freshness_checks, freshness_sensor
from rtdp_dagster.quality.resources import GreatExpectationsResource


def build_defs(quality: QualityConfig) -> dg.Definitions:
    freshness = freshness_checks(quality.freshness)
    return dg.Definitions(
        asset_checks=[*quality_checks, *freshness],
        jobs=[bronze_quality_job, reconciliation_job],
        schedules=[build_schedule(bronze_quality_job, "20 0 * * *")],
        sensors=[freshness_sensor(freshness)],
        resources={"great_expectations": GreatExpectationsResource()},
    )
