"""Kappa replay against the session's Kafka: a lost table restored from Kafka, a range already stored
adding nothing (through `rtdp replay`), a lost time range restored exactly (through the Dagster job),
and the late-data sensor requesting exactly the days that got rows back."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
from kafka import KafkaProducer

from rtdp_dagster.batch.sensors import late_data_sensor
from rtdp_dagster.config import Settings, TopicConfig
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.replay.bronze_replay import replay_time_range
from rtdp_dagster.replay.jobs import kappa_replay_job
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.spark.session import delta_version
from rtdp_dagster.stack.topics import ensure_topics
from tests.batch.bronze_rows import ms

DAYS = ("2026-10-05", "2026-10-06")
# Bronze columns that do not depend on which run wrote a record.
STABLE = [
    "namespace",
    "metric",
    "tags",
    "value",
    "ums_ts_",
    "point_key",
    "ums_id_",
    "ums_op_",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
]


def produce(settings: Settings, topic: str, kafka_t0: int) -> int:
    """Ten points (five per day) and one malformed record, Kafka time kafka_t0 + i seconds; returns the count."""
    producer = KafkaProducer(**settings.kafka.client_options(), acks="all")
    for i in range(10):
        metric, tags, ts = "sys.cpu.util", {"host": f"h{i % 2}"}, ms(f"{DAYS[i // 5]}T12:00:00") + i * 1000
        point = Envelope(
            namespace="test.replay.metrics.points.v1.0.0",
            metric=metric,
            tags=tags,
            value=float(i),
            ums_ts_=ts,
            point_key=point_key(metric, tags, ts),
            ums_id_=1,
            ums_op_="i",
            wave=1,
            source="replay",
            collected_at=ts,
        )
        producer.send(topic, value=encode(point), partition=i % 2, timestamp_ms=kafka_t0 + i * 1000)
    producer.send(topic, value=b"{not json", partition=0, timestamp_ms=kafka_t0 + 10_000)
    producer.flush()
    producer.close()
    return 11


def stable_rows(spark, path: str) -> list[str]:
    return sorted(map(str, spark.read.format("delta").load(path).select(*STABLE).collect()))


def test_replay_restores_what_is_lost_and_adds_nothing_twice(stack: Settings, spark, tmp_path: Path) -> None:
    from rtdp_dagster.definitions import defs

    topic = f"rtdp.points.replay{uuid.uuid4().hex[:8]}"
    # Producer-set Kafka timestamps: the records are stamped an hour back, as if they had arrived then.
    created = TopicConfig(name=topic, partitions=2, timestamp_type="CreateTime")
    ensure_topics(stack.kafka.model_copy(update={"topics": [created]}))
    kafka_t0 = (int(time.time()) - 3600) * 1000
    produce(stack, topic, kafka_t0)
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    bronze, quarantine = delta.table_path("bronze"), delta.table_path("quarantine")
    common = {
        "topics": [topic],
        "topic_pattern": stack.stream.topic_pattern,
        "bronze_path": bronze,
        "quarantine_path": quarantine,
    }

    # A lost table: everything comes back from Kafka, through the stream's validation.
    first = replay_time_range(
        spark,
        stack.kafka,
        stack.validation,
        start_ms=kafka_t0,
        end_ms=kafka_t0 + 60_000,
        app_id="test-replay-1",
        **common,
    )
    assert (first.records_read, first.bronze_added, first.quarantined_added) == (11, 10, 1)
    assert first.days == list(DAYS)
    assert spark.read.format("delta").load(quarantine).first()["reason"] == "invalid_json"
    complete = stable_rows(spark, bronze)
    assert len(complete) == 10

    # The same range again, from the command line: everything is there already.
    version = delta_version(spark, bronze)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "rtdp_dagster.cli",
            "replay",
            "--from",
            str(kafka_t0),
            "--to",
            str(kafka_t0 + 60_000),
            "--topic",
            topic,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RTDP_DELTA__ROOT": delta.root},
    )
    assert cli.returncode == 0, cli.stderr
    summary = json.loads(cli.stdout)
    assert (summary["already_stored"], summary["bronze_added"], summary["quarantined_added"]) == (11, 0, 0)
    assert delta_version(spark, bronze) == version, "nothing to add: no commit"

    # Records of Kafka times [t0+3s, t0+7s) lost; the Dagster job replays exactly that range.
    lost = (
        f"kafka_timestamp >= timestamp_millis({kafka_t0 + 3000}) "
        f"AND kafka_timestamp < timestamp_millis({kafka_t0 + 7000})"
    )
    spark.sql(f"DELETE FROM delta.`{bronze}` WHERE {lost}").collect()
    assert len(stable_rows(spark, bronze)) == 6
    after_loss = delta_version(spark, bronze)
    config = {"start": str(kafka_t0 + 3000), "end": str(kafka_t0 + 7000), "topics": [topic]}
    run = kappa_replay_job.execute_in_process(
        run_config={"ops": {"replay_kafka_range": {"config": config}}},
        resources={**dict(defs.resources or {}), "delta": delta},
    )
    assert run.success
    restored = run.output_for_node("replay_kafka_range")
    assert (restored["records_read"], restored["bronze_added"]) == (4, 4)
    assert restored["days_with_new_rows"] == list(DAYS)  # records 3, 4 of day one, 5, 6 of day two
    assert stable_rows(spark, bronze) == complete

    # Both days are closed and in silver: the late-data sensor re-runs exactly them.
    with dg.instance_for_test() as instance:
        for day in DAYS:
            instance.report_runless_asset_event(dg.AssetMaterialization("silver", partition=day))
        context = dg.build_sensor_context(
            instance=instance,
            cursor=str(after_loss),
            resources={"delta": delta, "platform": PlatformConfigResource()},
        )
        result = late_data_sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert sorted(str(r.partition_key) for r in result.run_requests or []) == list(DAYS)
