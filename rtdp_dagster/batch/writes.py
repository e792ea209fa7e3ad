"""Partition-exact Delta writes: replace exactly the given partitions, so a re-run is idempotent.

``replaceWhere`` on the partition column makes one atomic commit that drops the partitions'
current files and adds the new ones; other partitions are untouched, and a partition whose new
frame is empty ends up empty (every point of a day retracted). Delta also refuses the write if
the frame holds a row outside the predicate, so a caller's mistake cannot spill into another day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import DataFrame


def _literal(value: dt.date | int | str) -> str:
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def replace_where(partition_column: str, values: Sequence[dt.date | int | str]) -> str:
    """The SQL predicate selecting exactly these partitions."""
    if not values:
        raise ValueError("no partitions to replace")
    listed = ", ".join(_literal(value) for value in sorted(set(values)))  # type: ignore[type-var]
    return f"`{partition_column}` IN ({listed})"


def replace_partitions(
    frame: DataFrame, path: str, partition_column: str, values: Sequence[dt.date | int | str]
) -> None:
    """Overwrite exactly these partitions of the Delta table at path (created if absent)."""
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", replace_where(partition_column, values))
        .partitionBy(partition_column)
        .save(path)
    )


def write_days(frame: DataFrame, path: str, days: Sequence[dt.date], partition_column: str) -> None:
    """Overwrite exactly these days (a DATE partition column) of the Delta table at path."""
    replace_partitions(frame, path, partition_column, list(days))
