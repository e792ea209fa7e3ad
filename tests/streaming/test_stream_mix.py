"""A known mix on Kafka through `rtdp stream --once`: bronze exactly once, quarantine with reasons,
the realtime TSDB with each point once and its latest value."""

import json
import time
import uuid
from pathlib import Path

from kafka import KafkaProducer

from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.config import Settings
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.tsdb.query import export_series, force_flush

from .conftest import publish, rtdp

# Kind "free" (quality.metric_kinds): the test values are not bounded like a CPU share. Unique to
# the session: the realtime TSDB is shared, and `rtdp demo` writes the fleet's own sys.load.avg.
METRIC = f"test.stream.load{uuid.uuid4().hex[:8]}"


def envelope(host: str, ts: int, value: float | None, *, op: str = "i", wave: int = 1, version: int) -> Envelope:
    tags = {"host": host}
    return Envelope(
        namespace="synthetic.local.fleet.metrics.v1.0.0",
        metric=METRIC,
        tags=tags,
        value=value,
        ums_ts_=ts,
        point_key=point_key(METRIC, tags, ts),
        ums_id_=version,
        ums_op_=op,
        wave=wave,
        source="mix",
        collected_at=ts + 1000,
    )


def malformed(now_ms: int) -> dict[str, bytes | None]:
    good = json.loads(encode(envelope("site01-host0001", now_ms - 5_000, 1.0, version=1)))
    return {
        "invalid_json": b"{not json",
        "incompatible_schema": json.dumps(good | {"schema_version": "2.0"}).encode(),
        "missing_field": json.dumps({k: v for k, v in good.items() if k != "point_key"}).encode(),
        "wrong_type": json.dumps(good | {"value": "12.5"}).encode(),
        "invalid_metric_name": json.dumps(good | {"metric": "cpu usage%"}).encode(),
        "timestamp_in_future": json.dumps(good | {"ums_ts_": now_ms + 86_400_000}).encode(),
        "oversize_tags": json.dumps(good | {"tags": {"host": "x" * 300}}).encode(),
        "empty_record": None,
    }


def test_known_mix_lands_exactly_where_it_belongs(stream_env: tuple[Settings, Path], spark) -> None:
    settings, config_file = stream_env
    now = (int(time.time()) - 600) * 1000
    hosts = [f"site01-host{i:04d}" for i in range(1, 5)] + ["not-in-master-data"]
    originals = [
        envelope(h, now + step * 1000, float(step * 10 + i), version=now + step)
        for step in range(20)
        for i, h in enumerate(hosts)
    ]
    duplicates = [
        envelope(e.tags["host"], e.ums_ts_, e.value or 0.0, wave=2, version=e.ums_id_ + 10**6) for e in originals[:30]
    ]
    corrections = [
        envelope(e.tags["host"], e.ums_ts_, (e.value or 0.0) + 0.5, op="u", wave=2, version=e.ums_id_ + 2 * 10**6)
        for e in originals[40:50]
    ]
    retractions = [
        envelope(e.tags["host"], e.ums_ts_, None, op="d", wave=3, version=e.ums_id_ + 3 * 10**6)
        for e in originals[60:65]
    ]
    publisher = Publisher(settings.kafka)
    for item in originals + duplicates + corrections + retractions:
        publisher.send_point(item)
    publisher.confirm()
    publisher.close()
    bad = malformed(now)
    producer = KafkaProducer(**settings.kafka.client_options(), acks="all")
    for payload in bad.values():
        producer.send(settings.kafka.points_topic, key=b"bad", value=payload)
    producer.flush()
    producer.close()

    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-2000:]

    bronze = spark.read.format("delta").load(settings.delta.table_path("bronze"))
    valid = len(originals) + len(duplicates) + len(corrections) + len(retractions)
    assert bronze.count() == valid
    assert bronze.select("kafka_topic", "kafka_partition", "kafka_offset").distinct().count() == valid
    assert {r["ums_op_"]: r["count"] for r in bronze.groupBy("ums_op_").count().collect()} == {
        "i": 130,
        "u": 10,
        "d": 5,
    }
    quarantine = spark.read.format("delta").load(settings.delta.table_path("quarantine"))
    assert sorted(r["reason"] for r in quarantine.collect()) == sorted(bad)
    assert quarantine.where("raw_value IS NULL").count() == 1  # the empty record, kept with its reason

    assert_realtime_holds(settings, now, originals, corrections, retractions)

    progress = spark.read.format("delta").load(settings.delta.table_path("stream_progress"))
    totals = {r["query"]: r for r in progress.groupBy("query").sum().collect()}
    assert totals["bronze"]["sum(quarantined)"] == len(bad)
    assert totals["bronze"]["sum(bronze_rows)"] == valid
    assert totals["realtime"]["sum(tsdb_failed)"] == 0
    assert totals["realtime"]["sum(deduplicated)"] == len(duplicates)

    # A later wave re-reads the same points after the stream restarted: its dedup state comes back
    # from bronze, so bronze keeps the re-reads and the TSDB gets none of them.
    rereads = [
        envelope(e.tags["host"], e.ums_ts_, e.value or 0.0, wave=3, version=e.ums_id_ + 4 * 10**6)
        for e in originals[:30]
    ]
    publish(settings, rereads)
    result = rtdp(config_file, "stream", "--once")
    assert result.returncode == 0, result.stderr[-2000:]
    assert spark.read.format("delta").load(settings.delta.table_path("bronze")).count() == valid + len(rereads)
    assert_realtime_holds(settings, now, originals, corrections, retractions)
    progress = spark.read.format("delta").load(settings.delta.table_path("stream_progress"))
    realtime = progress.where("query = 'realtime'").groupBy().sum("deduplicated", "tsdb_written").first()
    assert realtime is not None and realtime["sum(deduplicated)"] == len(duplicates) + len(rereads)


def assert_realtime_holds(
    settings: Settings, now: int, originals: list[Envelope], corrections: list[Envelope], retractions: list[Envelope]
) -> None:
    """Each point once with its latest value; a correction after its original at most."""
    force_flush(settings.tsdb.realtime.url)
    samples: dict[tuple[str, int], list[float]] = {}
    for series in export_series(settings.tsdb.realtime.url, METRIC, {}):
        for ts, value in series["points"]:
            if now <= ts < now + 20_000:
                samples.setdefault((series["tags"]["host"], ts), []).append(value)
        if series["tags"]["host"] == "not-in-master-data":
            assert series["tags"]["site"] == "unknown" and series["tags"]["app"] == "unknown"
    corrected = {(e.tags["host"], e.ums_ts_): e.value for e in corrections}
    retracted = {(e.tags["host"], e.ums_ts_) for e in retractions}
    for e in originals:
        key = (e.tags["host"], e.ums_ts_)
        if key in retracted:
            # Retracted inside the same micro-batch: never written; in a later one: the original stays.
            assert samples.get(key, [e.value]) == [e.value], key
        elif key in corrected:
            assert samples[key][-1] == corrected[key] or corrected[key] in samples[key], key
            assert len(samples[key]) <= 2
        else:
            assert samples[key] == [e.value], f"{key}: {samples.get(key)}"
