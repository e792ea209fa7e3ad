"""Spark sessions are Spark Connect clients of one warm server (the stack's, or a cluster's)."""

from __future__ import annotations

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


def delta_table_sql(path: str) -> str:
    """The Delta table at path as a SQL table name (a backtick in the path escaped)."""
    return "delta.`" + path.replace("`", "``") + "`"


def delta_version(spark: SparkSession, path: str) -> int:
    """The latest commit version of the Delta table at path."""
    row = spark.sql(f"DESCRIBE HISTORY {delta_table_sql(path)} LIMIT 1").select("version").first()
    if row is None:
        raise ValueError(f"{path}: not a Delta table with history")
    return int(row["version"])
