"""Delta tables written by the speed layer, and the envelope schema used to parse Kafka values."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import types as T

BRONZE = "bronze"
QUARANTINE = "quarantine"
STREAM_PROGRESS = "stream_progress"
TSDB_REPAIR = "tsdb_repair"

# The typed envelope; only rows the validator accepted are read through it.
ENVELOPE_SCHEMA = T.StructType(
    [
        T.StructField("namespace", T.StringType()),
        T.StructField("metric", T.StringType()),
        T.StructField("tags", T.MapType(T.StringType(), T.StringType())),
        T.StructField("value", T.DoubleType()),
        T.StructField("ums_ts_", T.LongType()),
        T.StructField("point_key", T.StringType()),
        T.StructField("ums_id_", T.LongType()),
        T.StructField("ums_op_", T.StringType()),
        T.StructField("wave", T.IntegerType()),
        T.StructField("source", T.StringType()),
        T.StructField("collected_at", T.LongType()),
        T.StructField("schema_version", T.StringType()),
    ]
)
ENVELOPE_FIELDS = [field.name for field in ENVELOPE_SCHEMA.fields]
KAFKA_COORDINATES = ["kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"]

# The bronze table: the envelope, its Kafka coordinates, the micro-batch, the event-date partition.
BRONZE_SCHEMA = T.StructType(
    [
        *ENVELOPE_SCHEMA.fields,
        T.StructField("kafka_topic", T.StringType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("kafka_timestamp", T.TimestampType()),
        T.StructField("batch_id", T.LongType()),
        T.StructField("ingested_at", T.LongType()),
        T.StructField("event_date", T.DateType()),
    ]
)


def ensure_bronze(spark: SparkSession, path: str) -> None:
    """An empty bronze table where there is none yet, so its readers can start before its first batch."""
    from delta.tables import DeltaTable

    DeltaTable.createIfNotExists(spark).location(path).addColumns(BRONZE_SCHEMA).partitionedBy(
        "event_date"
    ).execute()
