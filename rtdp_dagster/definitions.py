"""The rtdp code location: assembles each domain's assets, jobs, schedules and sensors."""

import dagster as dg

from rtdp_dagster.batch import assets as batch
from rtdp_dagster.batch.sensors import late_data_sensor
from rtdp_dagster.collection import assets as collection
from rtdp_dagster.collection.jobs import build_wave_job
from rtdp_dagster.collection.schedules import build_wave_schedule
from rtdp_dagster.config import load_settings
from rtdp_dagster.maintenance import jobs as maintenance
from rtdp_dagster.quality import checks as quality
from rtdp_dagster.quality.freshness import freshness_checks, freshness_sensor, with_freshness_policies
from rtdp_dagster.replay.jobs import kappa_replay_job
from rtdp_dagster.resources import build_resources
from rtdp_dagster.smoke import assets as smoke
from rtdp_dagster.streaming import assets as speed

settings = load_settings()
wave_jobs = {wave: build_wave_job(wave, settings.collection.sources) for wave in (2, 3)}
freshness = freshness_checks(settings.quality.freshness)

defs = dg.Definitions(
    assets=with_freshness_policies(
        [
            smoke.smoke_kafka_points,
            smoke.smoke_delta_points,
            smoke.smoke_realtime_tsdb,
            collection.collection_log,
            speed.kafka_points,
            speed.bronze,
            speed.quarantine,
            speed.realtime_tsdb,
            speed.stream_progress,
            batch.silver,
            *batch.rollups,
        ],
        settings.quality.freshness,
    ),
    asset_checks=[speed.stream_heartbeat_fresh, *quality.quality_checks, *freshness],
    jobs=[
        smoke.smoke_job,
        collection.collection_log_job,
        speed.stream_health_job,
        batch.daily_batch_job,
        *wave_jobs.values(),
        maintenance.tsdb_repair_job,
        maintenance.delta_maintenance_job,
        kappa_replay_job,
        quality.bronze_quality_job,
        quality.reconciliation_job,
    ],
    schedules=[
        build_wave_schedule(wave_jobs[2], settings.collection.wave2_cron),
        build_wave_schedule(wave_jobs[3], settings.collection.wave3_cron),
        collection.collection_log_schedule,
        speed.stream_health_schedule,
        batch.daily_batch_schedule,
        *maintenance.maintenance_schedules(settings),
        quality.bronze_quality_schedule,
    ],
    sensors=[late_data_sensor, freshness_sensor(freshness)],
    resources=build_resources(settings),
    # Steps do their heavy work on the Spark Connect server, Kafka or the TSDBs: a process per step
    # would only add seconds of Python start-up each on two cores.
    executor=dg.in_process_executor,
)
