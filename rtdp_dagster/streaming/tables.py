"""Delta tables written by the speed layer, and the envelope schema used to parse Kafka values."""

from __future__ import annotations

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.spark.session import delta_table_sql

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
# kafka_index: the point's index in its record (0 for a v1 record, which holds one point).
KAFKA_COORDINATES = ["kafka_topic", "kafka_partition", "kafka_offset", "kafka_index", "kafka_timestamp"]


def envelope_columns() -> list[Column]:
    """The parsed ``envelope`` struct's fields as top-level columns, as bronze stores them."""
    return [F.col(f"envelope.{name}").alias(name) for name in ENVELOPE_FIELDS]


# Where a record was on Kafka, then the micro-batch that wrote it: in bronze and in quarantine.
_LANDING_FIELDS = [
    T.StructField("kafka_topic", T.StringType()),
    T.StructField("kafka_partition", T.IntegerType()),
    T.StructField("kafka_offset", T.LongType()),
    T.StructField("kafka_index", T.IntegerType()),
    T.StructField("kafka_timestamp", T.TimestampType()),
    T.StructField("batch_id", T.LongType()),
    T.StructField("ingested_at", T.LongType()),
]

# The bronze table: the envelope, its Kafka coordinates, the micro-batch, the event-date partition.
BRONZE_SCHEMA = T.StructType([*ENVELOPE_SCHEMA.fields, *_LANDING_FIELDS, T.StructField("event_date", T.DateType())])


# Invalid records: the raw record (of a refused v2 point: its series and tuple), why it was refused,
# the record's size in bytes, where it was on Kafka (no index when a v2 record is refused whole),
# when it came.
QUARANTINE_SCHEMA = T.StructType(
    [
        T.StructField("raw_key", T.StringType()),
        T.StructField("raw_value", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("detail", T.StringType()),
        T.StructField("raw_size", T.IntegerType()),
        *_LANDING_FIELDS,
        T.StructField("received_date", T.DateType()),
    ]
)


# Bronze keeps file statistics (for data skipping) only of the columns its readers filter on:
# event time (repair, the stream's restart), Kafka coordinates (replay). Min/max of every string
# column cost a third of each micro-batch's bronze write.
BRONZE_STATS_COLUMNS = "ums_ts_,ums_id_,kafka_partition,kafka_offset,batch_id"
BRONZE_PROPERTIES = {
    "delta.dataSkippingStatsColumns": BRONZE_STATS_COLUMNS,
    # The stream commits about once a second, and a Delta checkpoint stalls its micro-batch for 2 s
    # or more; every 100 commits instead of every 10 (readers replay at most 100 small commit files).
    "delta.checkpointInterval": "100",
}


def _properties_sql(properties: dict[str, str]) -> str:
    return ", ".join(f"'{key}' = '{value}'" for key, value in sorted(properties.items()))


def ensure_table(
    spark: SparkSession,
    path: str,
    schema: T.StructType,
    partition_column: str,
    properties: dict[str, str] | None = None,
) -> None:
    """An empty table where there is none yet: readers (the stream's restart, checks, reconciliation)
    can start before the first micro-batch, and a batch with nothing for a table needs no commit.

    properties: set on a new table, and on an existing one that has other values (tables created
    by an earlier version keep up).
    """
    # SQL rather than DeltaTable's builder: it works the same in the stream's classic Spark and
    # through Spark Connect.
    properties = properties or {}
    columns = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in schema.fields)
    listed = f" TBLPROPERTIES ({_properties_sql(properties)})" if properties else ""
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {delta_table_sql(path)} ({columns}) USING DELTA"
        f" PARTITIONED BY (`{partition_column}`){listed}"
    )
    # SHOW TBLPROPERTIES reads the table's metadata only; DESCRIBE DETAIL also computes its size from
    # the whole log, a Spark job that cost a starting stream 5-6 s per table.
    have = {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {delta_table_sql(path)}").collect()}
    stale = {key: value for key, value in properties.items() if have.get(key) != value}
    if stale:
        spark.sql(f"ALTER TABLE {delta_table_sql(path)} SET TBLPROPERTIES ({_properties_sql(stale)})")


def ensure_bronze(spark: SparkSession, path: str) -> None:
    ensure_table(spark, path, BRONZE_SCHEMA, "event_date", BRONZE_PROPERTIES)


def ensure_quarantine(spark: SparkSession, path: str) -> None:
    ensure_table(spark, path, QUARANTINE_SCHEMA, "received_date")
