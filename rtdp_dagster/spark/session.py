"""Spark sessions are Spark Connect clients of one warm server (the stack's, or a cluster's)."""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from rtdp_dagster.config import Settings


def client_config(settings: Settings) -> dict[str, str]:
    # `spark.remote` makes SparkSession.builder return a Spark Connect session; the same
    # dictionary configures dagster-pyspark's resource.
    return {"spark.remote": settings.spark.connect_url}


def connect(settings: Settings) -> SparkSession:
    builder = SparkSession.builder
    for key, value in client_config(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def connect_separately(settings: Settings) -> SparkSession:
    """A session of its own on settings' server, for a process that also holds another (``connect``
    would hand back the one it has, whatever server that is on, and stopping it would stop that)."""
    return SparkSession.builder.remote(settings.spark.connect_url).create()


# Error conditions Spark reports for a Delta table that was never written: nothing at the path,
# or a folder whose first commit is still being written (a table another process is creating:
# the stream looks for master data while `rtdp master load` writes it).
_MISSING_TABLE = ("PATH_NOT_FOUND", "DELTA_TABLE_NOT_FOUND")


def is_missing_table(error: AnalysisException) -> bool:
    return error.getCondition() in _MISSING_TABLE


def delta_table_sql(path: str) -> str:
    """The Delta table at path as a SQL table name (a backtick in the path escaped)."""
    return "delta.`" + path.replace("`", "``") + "`"


def delta_version(spark: SparkSession, path: str) -> int:
    """The latest commit version of the Delta table at path."""
    row = spark.sql(f"DESCRIBE HISTORY {delta_table_sql(path)} LIMIT 1").select("version").first()
    if row is None:
        raise ValueError(f"{path}: not a Delta table with history")
    return int(row["version"])
