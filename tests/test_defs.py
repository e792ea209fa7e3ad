"""The code locations load with no stack, and what they define is spelled out here, so any change to an
asset, check, schedule or sensor shows up in review."""

import dagster as dg

ASSETS = [
    "bronze",
    "collection_log",
    "kafka_points",
    "quarantine",
    "realtime_tsdb",
    "rollup_1d",
    "rollup_1h",
    "rollup_1m",
    "rollup_1mo",
    "rollup_1w",
    "rollup_1y",
    "silver",
    "stream_progress",
]
CHECKS = [
    "bronze:in_partition_day",
    "bronze:keys_not_null",
    "bronze:schema",
    "bronze:stream_heartbeat_fresh",
    "bronze:value_range",
    "rollup_1d:matches_finer",
    "rollup_1d:matches_silver",
    "rollup_1d:valid",
    "rollup_1h:matches_finer",
    "rollup_1h:valid",
    "rollup_1m:valid",
    "silver:completeness",
    "silver:counter_monotonic",
    "silver:freshness_check",
    "silver:in_partition_day",
    "silver:keys_not_null",
    "silver:point_key_unique",
    "silver:reconciliation",
    "silver:schema",
    "silver:series_time_unique",
    "silver:value_range",
]
# name -> (cron, UTC, running by default); the crons of the default configuration.
SCHEDULES = {
    "bronze_quality_job_schedule": ("20 0 * * *", True),
    "collection_log_job_schedule": ("*/5 * * * *", True),
    "daily_batch_job_schedule": ("30 0 * * *", False),
    "delta_maintenance_job_schedule": ("15 3 * * *", True),
    "stream_health_job_schedule": ("*/5 * * * *", True),
    "tsdb_repair_job_schedule": ("*/15 * * * *", True),
    "wave2_catchup_schedule": ("*/5 * * * *", True),
    "wave3_catchup_schedule": ("10 * * * *", True),
}
SENSORS = ["default_automation_condition_sensor", "freshness_checks_sensor", "late_data_sensor"]
JOBS = [
    "bronze_quality_job",
    "collection_log_job",
    "daily_batch_job",
    "delta_maintenance_job",
    "kappa_replay_job",
    "reconciliation_job",
    "stream_health_job",
    "tsdb_repair_job",
    "wave2_catchup",
    "wave3_catchup",
]
RESOURCES = ["delta", "great_expectations", "history_tsdb", "kafka", "platform", "realtime_tsdb", "spark"]
FRESHNESS_POLICIES = [
    "collection_log",
    "rollup_1d",
    "rollup_1h",
    "rollup_1m",
    "rollup_1mo",
    "rollup_1w",
    "rollup_1y",
    "silver",
]
SMOKE_ASSETS = ["smoke_delta_points", "smoke_kafka_points", "smoke_realtime_tsdb"]


def _asset_names(defs: dg.Definitions) -> list[str]:
    return sorted(key.to_user_string() for key in defs.resolve_all_asset_keys())


def test_production_location_defines_exactly_these() -> None:
    from rtdp_dagster.definitions import defs, settings

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    assert _asset_names(defs) == ASSETS
    assert sorted(f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys) == CHECKS
    schedules = {
        schedule.name: (schedule.cron_schedule, schedule.default_status == dg.DefaultScheduleStatus.RUNNING)
        for schedule in repository.schedule_defs
    }
    expected = dict(SCHEDULES)
    # The crons of the configuration in use (the defaults unless rtdp.yaml or RTDP_* change them).
    expected["wave2_catchup_schedule"] = (settings.collection.wave2_cron, True)
    expected["wave3_catchup_schedule"] = (settings.collection.wave3_cron, True)
    expected["tsdb_repair_job_schedule"] = (settings.maintenance.tsdb_repair_cron, True)
    expected["delta_maintenance_job_schedule"] = (settings.maintenance.delta_cron, True)
    assert schedules == expected
    assert {schedule.execution_timezone for schedule in repository.schedule_defs} == {"UTC"}
    assert sorted(sensor.name for sensor in repository.sensor_defs) == SENSORS
    assert sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")) == JOBS
    assert sorted(defs.resources or {}) == RESOURCES
    fresh = sorted(key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).freshness_policy)
    assert fresh == FRESHNESS_POLICIES
    assert {owner for key in graph.get_all_asset_keys() for owner in graph.get(key).owners} == {"team:platform"}


def test_default_crons_are_the_snapshot() -> None:
    from rtdp_dagster.config import Settings

    defaults = Settings()
    assert (defaults.collection.wave2_cron, defaults.collection.wave3_cron) == (
        SCHEDULES["wave2_catchup_schedule"][0],
        SCHEDULES["wave3_catchup_schedule"][0],
    )
    assert (defaults.maintenance.tsdb_repair_cron, defaults.maintenance.delta_cron) == (
        SCHEDULES["tsdb_repair_job_schedule"][0],
        SCHEDULES["delta_maintenance_job_schedule"][0],
    )


def test_smoke_assets_live_in_their_own_location() -> None:
    from rtdp_dagster.smoke.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert _asset_names(defs) == sorted([*ASSETS, *SMOKE_ASSETS])
    assert "smoke_job" in {job.name for job in defs.resolve_all_job_defs()}
