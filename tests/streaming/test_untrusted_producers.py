"""What a producer writes is checked where it can be, through `rtdp stream --once` on a real stack:

- a record stamped a month ahead (its ``collected_at`` too) is quarantined, and it cannot silence
  the realtime TSDB: every normal point after it is written, also after a restart, and also when a
  restart finds what the stream left before the fix (the skewed record in bronze, its time saved
  as the watermark's base);
- a record whose point_key is not the hash of its identity is quarantined, so a correction with a
  wrong key cannot leave two values of one point in silver, nor two points collapse into one.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from rtdp_dagster.batch.intervals import date_of_ms
from rtdp_dagster.batch.silver import silver_for_days
from rtdp_dagster.config import Settings
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.streaming.realtime_state import restore_dedup_state, save_max_event, state_file
from rtdp_dagster.streaming.tables import BRONZE_SCHEMA
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.batch.bronze_rows import TOPIC, Record, bronze_frame

from .conftest import publish, rtdp, with_overrides

pytestmark = pytest.mark.long_running

METRIC = f"test.stream.trust{uuid.uuid4().hex[:8]}"
DAY_MS = 86_400_000
HOSTS = [f"site01-host{i:04d}" for i in range(1, 6)]


def point(host: str, ts: int, value: float | None, *, version: int, op: str = "i", key: str | None = None) -> Envelope:
    tags = {"host": host}
    return Envelope(
        namespace="synthetic.local.fleet.metrics.v1.0.0",
        metric=METRIC,
        tags=tags,
        value=value,
        ums_ts_=ts,
        point_key=key or point_key(METRIC, tags, ts),
        ums_id_=version,
        ums_op_=op,
        wave=1,
        source="trust",
        collected_at=ts + 1000,
    )


def traffic(start: int, steps: int, first_value: float = 0.0) -> list[Envelope]:
    """Every host once a second from start, for steps seconds."""
    return [
        point(host, start + step * 1000, first_value + step * 10 + i, version=start + step)
        for step in range(steps)
        for i, host in enumerate(HOSTS)
    ]


def send_raw(settings: Settings, payloads: list[bytes]) -> None:
    producer = KafkaProducer(**settings.kafka.client_options(), acks="all")
    for payload in payloads:
        producer.send(settings.kafka.points_topic, key=b"raw", value=payload)
    producer.flush()
    producer.close()


def stream_once(config_file: Path) -> None:
    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-2000:]


def missing_from_realtime(settings: Settings, points: list[Envelope]) -> list[tuple[str, int]]:
    """The points whose (host, time, value) the realtime TSDB does not hold."""
    force_flush(settings.tsdb.realtime.url)
    series = export_series(settings.tsdb.realtime.url, METRIC, {})
    held = {(one["tags"]["host"], ts, value) for one in series for ts, value in one["points"]}
    return [(p.tags["host"], p.ums_ts_) for p in points if (p.tags["host"], p.ums_ts_, p.value) not in held]


def quarantined(spark, settings: Settings) -> list[tuple[str, str]]:
    quarantine = spark.read.format("delta").load(settings.delta.table_path("quarantine"))
    return sorted((row["reason"], row["detail"]) for row in quarantine.collect())


@pytest.mark.timeout(1200)  # two stream runs
def test_a_record_a_month_ahead_does_not_silence_the_realtime_tsdb(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    # Small micro-batches: the skewed record lands in an earlier batch than most normal points.
    with_overrides(config_file, stream={"max_offsets_per_trigger": 40})
    now = (int(time.time()) - 600) * 1000
    # A device clock a month ahead: its collected_at agrees with its event time.
    skewed = dataclasses.replace(
        point("site01-host0001", now + 30 * DAY_MS, 1.0, version=now), collected_at=now + 30 * DAY_MS
    )
    before, after = traffic(now, 10), traffic(now + 10_000, 30)
    publish(settings, before)
    send_raw(settings, [encode(skewed)])
    publish(settings, after)
    stream_once(config_file)

    assert [reason for reason, _ in quarantined(spark, settings)] == ["timestamp_in_future"]
    assert missing_from_realtime(settings, before + after) == []
    progress = spark.read.format("delta").load(settings.delta.table_path("stream_progress"))
    totals = progress.where("query = 'realtime'").groupBy().sum("late_for_realtime", "tsdb_written").first()
    assert totals is not None and totals["sum(late_for_realtime)"] == 0
    assert totals["sum(tsdb_written)"] == len(before + after)

    # A restart: new normal points reach the TSDB as well.
    restarted = traffic(now + 40_000, 5)
    publish(settings, restarted)
    stream_once(config_file)
    assert missing_from_realtime(settings, restarted) == []


def test_a_restart_does_not_learn_a_skewed_time_the_stream_kept_before(spark, stack: Settings, tmp_path: Path) -> None:
    """What a stream from before the fix left: the skewed record in bronze (landed at the real time)
    and its event time saved as the watermark's base. Neither moves the restored watermark past now."""
    now = int(time.time() * 1000)
    month_ahead = now + 30 * DAY_MS
    normal = [Record(METRIC, {"host": host}, now - 60_000, 1.0, ums_id=1, offset=i) for i, host in enumerate(HOSTS)]
    skewed = list(Record(METRIC, {"host": HOSTS[0]}, month_ahead, 1.0, ums_id=1, offset=len(HOSTS)).row())
    skewed[BRONZE_SCHEMA.fieldNames().index("ingested_at")] = now
    bronze_path = str(tmp_path / "bronze")
    frame = bronze_frame(spark, normal).unionByName(spark.createDataFrame([tuple(skewed)], BRONZE_SCHEMA))
    frame.write.format("delta").partitionBy("event_date").save(bronze_path)
    checkpoint = tmp_path / "checkpoint"
    (checkpoint / "commits").mkdir(parents=True)
    (checkpoint / "commits" / "0").write_text("v1\n{}\n")
    (checkpoint / "offsets").mkdir()
    offsets = json.dumps({TOPIC: {"0": len(HOSTS) + 1}})
    (checkpoint / "offsets" / "0").write_text(f'v1\n{{"batchWatermarkMs":0,"batchTimestampMs":{now}}}\n{offsets}\n')

    def restored() -> WatermarkDedup:
        dedup = WatermarkDedup(ttl_ms=3_600_000)
        assert restore_dedup_state(spark, dedup, checkpoint, bronze_path) > 0
        return dedup

    from_bronze = restored()  # a checkpoint from before the state file: the base is scanned from bronze
    save_max_event(state_file(checkpoint), 0, month_ahead, month_ahead)
    from_state_file = restored()
    for dedup in (from_bronze, from_state_file):
        assert dedup.max_event_ms is not None and dedup.max_event_ms <= int(time.time() * 1000)
        on_time = dedup.admit(np.array([7], dtype=np.int64), np.array([now - 1000], dtype=np.int64))
        assert on_time.late == 0 and on_time.keep.tolist() == [True]


def test_a_record_whose_point_key_is_not_its_identity_is_quarantined(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    start = (int(time.time()) - 7200) * 1000
    originals = traffic(start, 4)
    first, second, third = originals[0], originals[1], originals[2]
    version = start + 10**6
    # A correction of the first point under another point's key: it must not add a second value.
    wrong_key = point(first.tags["host"], first.ums_ts_, 99.0, version=version, op="u", key=third.point_key)
    # A correction of the second point with its own key: it replaces the point.
    right_key = point(second.tags["host"], second.ums_ts_, 42.0, version=version, op="u")
    # Two new points sharing one made-up key: they must not collapse into one.
    forged = [point("site01-host0009", start + i * 1000, float(i), version=version, key="f" * 32) for i in range(2)]
    publish(settings, [*originals, right_key])
    # The wrong-key correction encoded as collectors do (the JVM finds it), the forged pair not (Python does).
    not_canonical = [json.dumps(json.loads(encode(p))).encode() for p in forged]
    send_raw(settings, [encode(wrong_key), *not_canonical])
    stream_once(config_file)

    found = quarantined(spark, settings)
    assert [reason for reason, _ in found] == ["point_key_mismatch"] * 3
    expected_key = point_key(METRIC, wrong_key.tags, wrong_key.ums_ts_)
    assert any(third.point_key in detail and expected_key in detail for _, detail in found)

    bronze = spark.read.format("delta").load(settings.delta.table_path("bronze"))
    assert bronze.count() == len(originals) + 1
    days = sorted({date_of_ms(p.ums_ts_) for p in originals})
    silver = silver_for_days(bronze, days).collect()
    values = {(row["tags"]["host"], row["ums_ts_"]): row["value"] for row in silver}
    assert len(silver) == len(values) == len(originals), "one row per series and time"
    assert values[(first.tags["host"], first.ums_ts_)] == first.value
    assert values[(second.tags["host"], second.ums_ts_)] == 42.0
