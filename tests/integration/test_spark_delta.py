"""Spark (through the Spark Connect server) reads Kafka and writes/reads Delta."""

import json
import uuid
from pathlib import Path

from kafka import KafkaProducer
from pyspark.sql import functions as F

from rtdp_dagster.config import Settings
from rtdp_dagster.spark.session import delta_version


def test_spark_reads_kafka_through_the_connector(stack: Settings, spark) -> None:
    topic = "rtdp.smoke"
    marker = uuid.uuid4().hex
    producer = KafkaProducer(**stack.kafka.client_options(), acks="all")
    for i in range(40):
        producer.send(topic, key=f"k{i % 4}".encode(), value=json.dumps({"m": marker, "i": i}).encode())
    producer.flush()
    producer.close()

    frame = (
        spark.read.format("kafka")
        .options(**stack.kafka.spark_options())
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(
            F.col("key").cast("string").alias("key"),
            F.get_json_object(F.col("value").cast("string"), "$.m").alias("m"),
            F.get_json_object(F.col("value").cast("string"), "$.i").cast("int").alias("i"),
        )
        .where(F.col("m") == marker)
    )
    rows = frame.collect()
    assert sorted(row["i"] for row in rows) == list(range(40))
    assert {row["key"] for row in rows} == {"k0", "k1", "k2", "k3"}


def test_delta_write_read_and_history(stack: Settings, spark) -> None:
    path = str(Path(stack.delta.root) / f"t_{uuid.uuid4().hex[:8]}")
    spark.range(0, 100).withColumn("day", (F.col("id") % 2).cast("string")).write.format("delta").partitionBy(
        "day"
    ).save(path)
    assert delta_version(spark, path) == 0
    # Replace exactly one partition: the other one must be untouched.
    spark.range(1000, 1010).withColumn("day", F.lit("0")).write.format("delta").mode("overwrite").option(
        "replaceWhere", "day = '0'"
    ).save(path)
    assert delta_version(spark, path) == 1
    table = spark.read.format("delta").load(path)
    assert table.where("day = '0'").count() == 10
    assert table.where("day = '1'").count() == 50
    old = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert old.count() == 100
    operations = [row["operation"] for row in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
    assert operations == ["WRITE", "WRITE"]
