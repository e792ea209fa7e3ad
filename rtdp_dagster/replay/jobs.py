"""The Kappa replay as a Dagster job: launch it with a time range (and optionally topics) as run config.

The days that get rows are recomputed by the path every late arrival takes: the late-data sensor
sees the bronze commit and requests silver and the rollups of each closed, materialized day. Days
never materialized are not late; backfill them (see the README).
"""

import time

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from rtdp_dagster.replay.bronze_replay import replay_time_range
from rtdp_dagster.replay.offsets import parse_instant
from rtdp_dagster.resources import DeltaTablesResource, KafkaResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.streaming.assets import bronze
from rtdp_dagster.streaming.tables import BRONZE, QUARANTINE


class ReplayConfig(dg.Config):
    start: str = Field(
        description="Start of the range of Kafka record times (included): ISO-8601, UTC unless it "
        "has an offset, or epoch ms."
    )
    end: str = Field(description="End of the range (excluded), in the same forms.")
    topics: list[str] = Field(default=[], description="Topics to replay; default: every stream.topic_pattern topic.")


@dg.op(
    description="Re-reads a time range of Kafka through the stream's parsing and validation into bronze and "
    "quarantine, adding only records (by topic/partition/offset) not stored yet.",
    tags={"rtdp/kind": "replay"},
)
def replay_kafka_range(
    context: dg.OpExecutionContext,
    config: ReplayConfig,
    spark: LazyPySparkResource,
    kafka: KafkaResource,
    delta: DeltaTablesResource,
    platform: PlatformConfigResource,
) -> dg.Output[dict]:
    started = time.monotonic()
    settings = platform.settings()
    result = replay_time_range(
        spark.spark_session,
        kafka.config(),
        settings.validation,
        start_ms=parse_instant(config.start),
        end_ms=parse_instant(config.end),
        topics=config.topics,
        topic_pattern=settings.stream.topic_pattern,
        bronze_path=delta.table_path(BRONZE),
        quarantine_path=delta.table_path(QUARANTINE),
        app_id=f"rtdp-replay-{context.run_id}",
        kinds=settings.quality.metric_kinds,
    )
    metadata = {**result.metadata(), "duration_s": round(time.monotonic() - started, 2)}
    context.log.info(f"replay: {metadata}")
    if result.bronze_added:
        context.log_event(
            dg.AssetMaterialization(bronze.key, description="rows restored by a Kappa replay", metadata=metadata)
        )
    return dg.Output(result.metadata(), metadata=metadata)


@dg.job(
    name="kappa_replay_job",
    description="Kappa replay of a Kafka time range into bronze; the late-data sensor then re-runs the closed days.",
    tags={"rtdp/kind": "replay"},
)
def kappa_replay_job() -> None:
    replay_kafka_range()
