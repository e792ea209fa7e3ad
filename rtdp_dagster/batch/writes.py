"""Partition-exact Delta writes: replace exactly the given partitions, so a re-run is idempotent.

``replaceWhere`` on the partition column makes one atomic commit that drops the partitions'
current files and adds the new ones; other partitions are untouched, and a partition whose new
frame is empty ends up empty (every point of a day retracted). Delta also refuses the write if
the frame holds a row outside the predicate, so a caller's mistake cannot spill into another day.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.spark.session import delta_table_sql
from rtdp_dagster.table_storage import TableFiles

PartitionValue = dt.date | int | str
# How far back in a table's history a write looks for its own commit (other writers may commit after it).
_HISTORY_LOOKBACK = 50
_LOG = "_delta_log"


def _literal(value: PartitionValue) -> str:
    if isinstance(value, dt.datetime):
        raise TypeError(f"partition value {value!r}: pass a date, not a datetime")
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def replace_where(partition_column: str, values: Sequence[PartitionValue]) -> str:
    """The SQL predicate selecting exactly these partitions."""
    if not values:
        raise ValueError("no partitions to replace")
    literals = sorted({_literal(value) for value in values})
    return f"`{partition_column}` IN ({', '.join(literals)})"


def replace_partitions(
    frame: DataFrame,
    path: str,
    partition_column: str,
    values: Sequence[PartitionValue],
    *,
    stats_columns: Sequence[str] = (),
) -> None:
    """Overwrite exactly these partitions of the Delta table at path (created if absent).

    stats_columns, when given, become the table's ``delta.dataSkippingStatsColumns`` on creation:
    Delta then keeps min/max per file only for the columns queries skip by, instead of computing
    them for every column of every row written (several seconds of CPU for a day of silver).
    """
    replace_window(frame, path, partition_column, replace_where(partition_column, values), stats_columns=stats_columns)


def replace_window(
    frame: DataFrame,
    path: str,
    partition_column: str,
    predicate: str,
    *,
    stats_columns: Sequence[str] = (),
    commit_tag: str | None = None,
) -> None:
    """Overwrite exactly the rows matching predicate (``replaceWhere``) of the Delta table at path.

    commit_tag, when given, is the commit's ``userMetadata``: ``committed`` finds the commit by it.
    """
    writer = frame.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if stats_columns:
        writer = writer.option("delta.dataSkippingStatsColumns", ",".join(stats_columns))
    if commit_tag:
        writer = writer.option("userMetadata", commit_tag)
    writer.partitionBy(partition_column).save(path)


def new_commit_tag() -> str:
    return f"rtdp-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Commit:
    """A Delta commit and what its write reported: no second pass over the data to count it."""

    version: int
    rows: int
    files: int
    bytes: int


def committed(spark: SparkSession, path: str, commit_tag: str) -> Commit:
    """The commit a write tagged with commit_tag made at path, with its operation metrics.

    Read from the newest commit files of the table's Delta log (fsspec, no Spark job); through
    ``DESCRIBE HISTORY`` when this process cannot read the table's files.
    """
    try:
        info = _commit_info_from_log(path, commit_tag)
    except OSError:
        info = None
    if info is None:
        history = spark.sql(f"DESCRIBE HISTORY {delta_table_sql(path)} LIMIT {_HISTORY_LOOKBACK}")
        row = history.where(F.col("userMetadata") == commit_tag).select("version", "operationMetrics").first()
        if row is None:
            raise ValueError(f"{path}: no commit tagged {commit_tag} in its last {_HISTORY_LOOKBACK} versions")
        info = (int(row["version"]), dict(row["operationMetrics"] or {}))
    version, metrics = info
    return Commit(
        version,
        int(metrics.get("numOutputRows", 0)),
        int(metrics.get("numFiles", 0)),
        int(metrics.get("numOutputBytes", 0)),
    )


def _commit_info_from_log(path: str, commit_tag: str) -> tuple[int, dict[str, str]] | None:
    files = TableFiles(path)
    # Commit files are <20-digit version>.json; checkpoints, checksums and temporary files are not.
    names = (name.partition(".") for name in files.names(_LOG))
    versions = sorted((int(stem) for stem, dot, ext in names if dot and ext == "json" and stem.isdigit()), reverse=True)
    for version in versions[:_HISTORY_LOOKBACK]:
        for line in files.read_text(f"{_LOG}/{version:020d}.json").splitlines():
            info = json.loads(line).get("commitInfo")
            if info is not None:
                if info.get("userMetadata") == commit_tag:
                    return version, dict(info.get("operationMetrics") or {})
                break
    return None


def write_days(
    frame: DataFrame,
    path: str,
    days: Sequence[dt.date],
    partition_column: str,
    *,
    stats_columns: Sequence[str] = (),
    commit_tag: str | None = None,
) -> None:
    """Overwrite exactly these days (a DATE partition column) of the Delta table at path."""
    predicate = replace_where(partition_column, list(days))
    replace_window(frame, path, partition_column, predicate, stats_columns=stats_columns, commit_tag=commit_tag)
