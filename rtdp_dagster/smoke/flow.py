"""The smoke flow: points through every real component once, end to end.

Kafka (kafka-python, keyed by series) → Spark reads exactly this run's offsets through the
Kafka connector → Delta table (the run's slice replaced, so a re-run is idempotent) → the
realtime TSDB over OpenTSDB HTTP put → read back from the TSDB and counted.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.config import KafkaConfig, Settings, TsdbEndpoint
from rtdp_dagster.spark.session import connect, delta_version
from rtdp_dagster.tsdb.put import TsdbPoint, http_put
from rtdp_dagster.tsdb.query import count_points, force_flush

SMOKE_TOPIC = "rtdp.smoke"
SMOKE_TABLE = "smoke_points"
SMOKE_METRIC = "rtdp.smoke.value"
POINT_SCHEMA = T.StructType(
    [
        T.StructField("metric", T.StringType(), False),
        T.StructField("host", T.StringType(), False),
        T.StructField("ts_ms", T.LongType(), False),
        T.StructField("value", T.DoubleType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)


@dataclass
class SmokeResult:
    run_id: str
    produced: int
    delta_rows: int
    delta_version: int
    tsdb_points: int
    seconds: dict[str, float]


def _end_offsets(kafka: KafkaConfig, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**kafka.client_options(), client_id="rtdp-smoke-offsets")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def produce(kafka: KafkaConfig, run_id: str, points: int, hosts: int = 10) -> tuple[dict[int, int], dict[int, int]]:
    """Produce one point per second per host ending now; returns (start, end) offsets per partition."""
    start = _end_offsets(kafka, SMOKE_TOPIC)
    producer = KafkaProducer(**kafka.client_options(), acks="all", linger_ms=5, client_id="rtdp-smoke")
    now_s = int(time.time())
    futures = []
    for i in range(points):
        host = f"smoke-{i % hosts:02d}"
        point = {
            "metric": SMOKE_METRIC,
            "host": host,
            "ts_ms": (now_s - i // hosts) * 1000,
            "value": float(i),
            "run_id": run_id,
        }
        futures.append(
            producer.send(SMOKE_TOPIC, key=f"{SMOKE_METRIC}|host={host}".encode(), value=json.dumps(point).encode())
        )
    producer.flush()
    for future in futures:
        future.get(timeout=30)  # raises if any record was not acknowledged
    producer.close()
    return start, _end_offsets(kafka, SMOKE_TOPIC)


def kafka_to_delta(
    spark: SparkSession, kafka: KafkaConfig, path: str, run_id: str, start: dict[int, int], end: dict[int, int]
) -> tuple[int, int]:
    """Read exactly the given offsets with Spark and replace this run's slice of the Delta table."""
    offsets = lambda o: json.dumps({SMOKE_TOPIC: {str(p): v for p, v in o.items()}})  # noqa: E731
    raw = (
        spark.read.format("kafka")
        .options(**kafka.spark_options())
        .option("subscribe", SMOKE_TOPIC)
        .option("startingOffsets", offsets(start))
        .option("endingOffsets", offsets(end))
        .load()
    )
    parsed = raw.select(F.from_json(F.col("value").cast("string"), POINT_SCHEMA).alias("p")).select("p.*")
    (
        parsed.where(F.col("run_id") == run_id)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"run_id = '{run_id}'")
        .partitionBy("run_id")
        .save(path)
    )
    rows = spark.read.format("delta").load(path).where(F.col("run_id") == run_id).count()
    return rows, delta_version(spark, path)


def delta_to_tsdb(spark: SparkSession, path: str, run_id: str, tsdb: TsdbEndpoint, timeout_s: float) -> int:
    rows = (
        spark.read.format("delta")
        .load(path)
        .where(F.col("run_id") == run_id)
        .select("metric", "host", "ts_ms", "value")
        .collect()
    )
    points = [TsdbPoint(r["metric"], r["ts_ms"], r["value"], {"host": r["host"], "run": run_id}) for r in rows]
    return http_put(tsdb.put_http_url, points, timeout_s=timeout_s)


def tsdb_count(tsdb: TsdbEndpoint, run_id: str, expected: int, timeout_s: float = 15.0) -> int:
    """Points of this run queryable in the TSDB, waiting until all are visible."""
    deadline = time.monotonic() + timeout_s
    while True:
        force_flush(tsdb.url)
        found = count_points(tsdb.url, SMOKE_METRIC, {"run": run_id})
        if found >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def run_smoke(settings: Settings, points: int = 1000, log: Callable[[str], None] = print) -> SmokeResult:
    run_id = uuid.uuid4().hex[:12]
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[name] = round(now - clock, 2)
        clock = now
        log(f"smoke {run_id}: {name} done in {seconds[name]}s")

    path = settings.delta.table_path(SMOKE_TABLE)
    start, end = produce(settings.kafka, run_id, points)
    lap("produce")
    spark = connect(settings)
    rows, version = kafka_to_delta(spark, settings.kafka, path, run_id, start, end)
    lap("kafka_to_delta")
    written = delta_to_tsdb(spark, path, run_id, settings.tsdb.realtime, settings.tsdb.timeout_s)
    lap("delta_to_tsdb")
    found = tsdb_count(settings.tsdb.realtime, run_id, written)
    lap("tsdb_readback")
    return SmokeResult(run_id, points, rows, version, found, seconds)


def format_summary(result: SmokeResult, settings: Settings) -> str:
    ok = result.produced == result.delta_rows == result.tsdb_points
    lines = [
        f"rtdp smoke run {result.run_id}: {'OK' if ok else 'MISMATCH'}",
        f"  points produced to Kafka   {result.produced}",
        f"  rows in Delta              {result.delta_rows} (version {result.delta_version})",
        f"  Delta table                {settings.delta.table_path(SMOKE_TABLE)}",
        f"  points in realtime TSDB    {result.tsdb_points}",
        f"  seconds per step           {json.dumps(result.seconds)}",
        "URLs:",
        f"  Kafka bootstrap            {settings.kafka.bootstrap_servers}",
        f"  Spark Connect              {settings.spark.connect_url}",
        f"  Spark UI                   http://{settings.stack.bind_host}:{settings.stack.spark_connect.ui_port}",
        f"  realtime TSDB              {settings.tsdb.realtime.url}/vmui",
        f"  history TSDB               {settings.tsdb.history.url}/vmui",
        f"  Dagster UI                 http://{settings.stack.bind_host}:{settings.dagster.webserver_port}"
        " (start with `make dagster`)",
    ]
    return "\n".join(lines)
