"""v1 and v2 (UMS batch) records on the same topic through `rtdp stream --once` on a real stack.

- The same points sent as v1 records and as v2 batches land alike: bronze rows equal apart from
  their coordinates, and the realtime TSDB holds the same samples.
- A mixed topic (v1, v2, broken points, broken frames): each bad point quarantined alone with its
  reason and index, each broken frame once and whole with its size, every good point once in bronze.
- ``kill -9`` of the stream in a run of many batches, then a restart: every point once in bronze.
"""

from __future__ import annotations

import collections
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaProducer

from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.config import Settings
from rtdp_dagster.envelope.batch_builder import ClosedBatch
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.ums_batch import encode_batch
from rtdp_dagster.tsdb.query import export_series, force_flush

from .conftest import kill_stream_after_first_batch, rtdp, with_overrides
from .v2_records import as_dict, broken_frames, compact, point, same_origin, with_tuple

pytestmark = pytest.mark.long_running

BATCH_POINTS = 25


def traffic(metric: str, start: int) -> list[list[Envelope]]:
    """Originals, wave-2 re-reads, corrections and retractions: four collector windows of points."""
    hosts = [f"site01-host{i:04d}" for i in range(1, 5)] + ["not-in-master-data"]
    originals = [
        point(metric, h, start + step * 1000, float(step * 10 + i), version=start + step)
        for step in range(12)
        for i, h in enumerate(hosts)
    ]
    rereads = [point(metric, p.tags["host"], p.ums_ts_, p.value, version=p.ums_id_ + 10**6) for p in originals[:20]]
    corrections = [
        point(metric, p.tags["host"], p.ums_ts_, (p.value or 0) + 0.5, op="u", version=p.ums_id_ + 2 * 10**6)
        for p in originals[30:36]
    ]
    retractions = [
        point(metric, p.tags["host"], p.ums_ts_, None, op="d", version=p.ums_id_ + 3 * 10**6) for p in originals[40:43]
    ]
    windows = [originals, rereads, corrections, retractions]
    return [same_origin(window, start + 60_000 + n) for n, window in enumerate(windows)]


def send_v1(settings: Settings, windows: list[list[Envelope]]) -> None:
    publisher = Publisher(settings.kafka)
    for window in windows:
        for item in window:
            publisher.send_point(item)
    publisher.confirm()
    publisher.close()


def send_v2(settings: Settings, windows: list[list[Envelope]], points_per_record: int = BATCH_POINTS) -> int:
    """Each window as v2 records of at most points_per_record points, one partition each; returns how many."""
    publisher = Publisher(settings.kafka)
    records = 0
    for window in windows:
        by_partition: dict[int, list[Envelope]] = collections.defaultdict(list)
        for item in window:
            by_partition[publisher.series_partition(item.series_key)].append(item)
        for partition, items in by_partition.items():
            for first in range(0, len(items), points_per_record):
                chunk = items[first : first + points_per_record]
                publisher.send_batch(ClosedBatch(partition, encode_batch(chunk), len(chunk)))
                records += 1
    publisher.confirm()
    publisher.close()
    return records


def send_raw(settings: Settings, payloads: list[bytes | None]) -> None:
    producer = KafkaProducer(**settings.kafka.client_options(), acks="all", max_request_size=2 << 20)
    for payload in payloads:
        producer.send(settings.kafka.points_topic, key=b"raw", value=payload)
    producer.flush()
    producer.close()


def stream_once(config_file: Path) -> None:
    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-3000:]


def bronze_points(spark, settings: Settings, metric: str) -> collections.Counter:
    """Bronze rows of metric without coordinates, landing or metric-dependent fields."""
    bronze = spark.read.format("delta").load(settings.delta.table_path("bronze")).where(f"metric = '{metric}'")
    kept = [
        "namespace",
        "value",
        "ums_ts_",
        "ums_id_",
        "ums_op_",
        "wave",
        "source",
        "collected_at",
        "schema_version",
        "event_date",
    ]
    return collections.Counter(
        (tuple(sorted(row["tags"].items())), *(row[name] for name in kept)) for row in bronze.collect()
    )


def realtime_samples(settings: Settings, metric: str) -> set[tuple]:
    force_flush(settings.tsdb.realtime.url)
    return {
        (tuple(sorted(series["tags"].items())), ts, value)
        for series in export_series(settings.tsdb.realtime.url, metric, {})
        for ts, value in series["points"]
    }


@pytest.mark.timeout(900)
def test_the_same_points_as_v1_and_as_v2_land_alike(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    start = (int(time.time()) - 600) * 1000
    suffix = uuid.uuid4().hex[:8]
    as_v1, as_v2 = f"test.stream.v1x{suffix}", f"test.stream.v2x{suffix}"
    v1_windows, v2_windows = traffic(as_v1, start), traffic(as_v2, start)
    send_v1(settings, v1_windows)
    records = send_v2(settings, v2_windows)
    total = sum(len(window) for window in v2_windows)
    assert records < total / 5  # many points per record

    stream_once(config_file)

    v1_rows, v2_rows = bronze_points(spark, settings, as_v1), bronze_points(spark, settings, as_v2)
    assert sum(v1_rows.values()) == total and v1_rows == v2_rows
    bronze = spark.read.format("delta").load(settings.delta.table_path("bronze"))
    coordinates = bronze.select("kafka_topic", "kafka_partition", "kafka_offset", "kafka_index")
    assert coordinates.distinct().count() == bronze.count() == 2 * total
    assert bronze.where(f"metric = '{as_v1}' AND kafka_index <> 0").count() == 0
    assert bronze.where(f"metric = '{as_v2}'").select("kafka_offset", "kafka_partition").distinct().count() == records
    quarantine = spark.read.format("delta").load(settings.delta.table_path("quarantine"))
    assert quarantine.count() == 0

    samples_v1, samples_v2 = realtime_samples(settings, as_v1), realtime_samples(settings, as_v2)
    assert samples_v1 and samples_v1 == samples_v2
    progress = spark.read.format("delta").load(settings.delta.table_path("stream_progress"))
    totals = {r["query"]: r for r in progress.groupBy("query").sum().collect()}
    assert totals["bronze"]["sum(bronze_rows)"] == 2 * total
    assert totals["realtime"]["sum(deduplicated)"] == 2 * len(v1_windows[1])


BAD_POINTS = {
    "wrong_type": lambda t: [*t[:4], str(t[4])],
    "malformed_batch": lambda t: t[:4],
    "point_key_mismatch": lambda t: [t[0], t[1], t[2], "0" * 32, t[4]],
}


@pytest.mark.timeout(900)
def test_a_mixed_topic_quarantines_each_bad_point_and_frame_once(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    start = (int(time.time()) - 600) * 1000
    metric = f"test.stream.v2mix{uuid.uuid4().hex[:8]}"
    windows = traffic(metric, start)
    send_v1(settings, [windows[0][:10]])
    good = as_dict(windows[0][10:20])
    payloads: list[bytes | None] = [compact(good)]
    for change in BAD_POINTS.values():
        # The bad point is the record's index 1; its nine neighbours are good.
        payloads.append(with_tuple(good, 0, 1, change(good["payload"][0]["tuples"][1])))
    twice = as_dict(windows[0][20:22])
    twice["payload"][0]["tuples"].append(twice["payload"][0]["tuples"][0])
    twice["batch"]["points"] += 1
    payloads.append(compact(twice))
    frames = broken_frames(good)
    payloads += [payload for payload, _ in frames.values()]
    payloads += [None, b""]
    send_raw(settings, payloads)

    stream_once(config_file)

    bronze = spark.read.format("delta").load(settings.delta.table_path("bronze")).where(f"metric = '{metric}'")
    good_points = 10 + 10 + 9 * len(BAD_POINTS) + 3
    assert bronze.count() == good_points
    assert bronze.select("kafka_partition", "kafka_offset", "kafka_index").distinct().count() == good_points
    quarantine = spark.read.format("delta").load(settings.delta.table_path("quarantine"))
    rows = quarantine.collect()
    by_point = sorted((r["reason"], r["kafka_index"]) for r in rows if (r["kafka_index"] or 0) > 0)
    assert by_point == sorted((reason, 1) for reason in BAD_POINTS)
    whole = sorted((r["reason"], r["raw_size"]) for r in rows if r["kafka_index"] is None)
    expected = [(reason, len(payload)) for payload, reason in frames.values()]
    assert whole == sorted(expected)
    empty = sorted(r["reason"] for r in rows if r["kafka_index"] == 0)
    assert empty == ["empty_record", "empty_record"]
    assert len(rows) == len(BAD_POINTS) + len(frames) + 2


@pytest.mark.timeout(1200)
def test_kill_9_in_a_batch_heavy_run_then_restart_lands_every_point_once(
    stream_env: tuple[Settings, Path], spark
) -> None:
    settings, config_file = stream_env
    with_overrides(config_file, stream={"max_offsets_per_trigger": 12})  # records, so ~2,400 points
    start = (int(time.time()) - 1800) * 1000
    metric = f"test.stream.v2kill{uuid.uuid4().hex[:8]}"
    hosts = [f"h{i:02d}" for i in range(20)]
    window = [
        point(metric, host, start + step * 1000, float(step), version=start + step)
        for step in range(600)
        for host in hosts
    ]
    records = send_v2(settings, [same_origin(window, start + 700_000)], points_per_record=200)
    bronze_path = settings.delta.table_path("bronze")
    before_restart = kill_stream_after_first_batch(spark, config_file, bronze_path)
    assert 0 < before_restart < len(window), "the kill should land while work is left"
    stream_once(config_file)

    bronze = spark.read.format("delta").load(bronze_path)
    assert bronze.count() == len(window)
    coordinates = bronze.select("kafka_topic", "kafka_partition", "kafka_offset", "kafka_index").distinct()
    assert coordinates.count() == len(window)
    assert bronze.select("kafka_partition", "kafka_offset").distinct().count() == records
    assert spark.read.format("delta").load(settings.delta.table_path("quarantine")).count() == 0
