"""The clock a record's time is judged against ("too far in the future"): one its producer does not control.

- The Kafka record timestamp when the broker set it: the platform's topics are created with
  ``message.timestamp.type=LogAppendTime`` (Spark's Kafka source then gives ``timestampType`` 1).
- Otherwise (``CreateTime``: the producer wrote it, as on a foreign topic) the stream's receive
  time: the micro-batch's time, which Spark keeps in the checkpoint's offset log, so a batch run
  again after a restart is judged by the same clock.

The receive time reaches the rows as a one-row table joined to them, not as a literal (nor as
``current_timestamp()``, which Spark turns into one): Spark compiles literals into the generated
code, and one that changes every batch makes it compile the whole parse again each batch.
"""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.wall_clock import now_ms

# Spark's Kafka source: 0 = CreateTime (set by the producer), 1 = LogAppendTime (set by the broker).
LOG_APPEND_TIME = 1


def broker_ms(timestamp: Column, timestamp_type: Column) -> Column:
    """The record's Kafka timestamp in epoch ms where the broker set it, else null."""
    return F.when(timestamp_type == LOG_APPEND_TIME, F.unix_millis(timestamp))


def with_received_ms(frame: DataFrame, receive_ms: int) -> DataFrame:
    """frame (with ``broker_ms``) plus ``received_ms``: the broker's time, else receive_ms."""
    receive = frame.sparkSession.sql(f"SELECT * FROM VALUES ({int(receive_ms)}L) AS receive(receive_ms)")
    joined = frame.crossJoin(F.broadcast(receive))
    return joined.withColumn("received_ms", F.coalesce(F.col("broker_ms"), F.col("receive_ms"))).drop("receive_ms")


def batch_time_ms(checkpoint: Path, batch_id: int) -> int:
    """The micro-batch's time from the query's offset log (this process's clock if it says nothing)."""
    try:
        lines = (checkpoint / "offsets" / str(batch_id)).read_text().splitlines()
        return int(json.loads(lines[1])["batchTimestampMs"])
    except (OSError, IndexError, KeyError, TypeError, ValueError):
        return now_ms()
