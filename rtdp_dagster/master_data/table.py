"""Layout of the master data Delta table: one row per host per version, partitioned by version.

A version's rows are valid for event times ``valid_from_ms <= t < valid_to_ms``; ``valid_to_ms``
is the next loaded version's ``valid_from_ms``, null for the latest loaded version.
"""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from rtdp_dagster.master_data.models import MasterVersion
from rtdp_dagster.spark.session import is_missing_table

_TEXT_COLUMNS = ("host", "site", "site_name", "region", "app", "app_name", "owner", "role", "environment")
SCHEMA = T.StructType(
    [
        T.StructField("version", T.IntegerType(), False),
        T.StructField("valid_from_ms", T.LongType(), False),
        T.StructField("valid_to_ms", T.LongType(), True),
        *(T.StructField(name, T.StringType(), False) for name in _TEXT_COLUMNS),
        T.StructField("apps", T.ArrayType(T.StringType(), False), False),
    ]
)
COLUMNS = tuple(SCHEMA.fieldNames())
PARTITION_COLUMN = "version"

Row = tuple[int, int, int | None, str, str, str, str, str, str, str, str, str, list[str]]


def host_rows(version: MasterVersion, valid_to_ms: int | None) -> list[Row]:
    """The table rows of one version, in COLUMNS order."""
    return [
        (
            version.version,
            version.valid_from_ms,
            valid_to_ms,
            entry.host,
            entry.site,
            entry.site_name,
            entry.region,
            entry.app,
            entry.app_name,
            entry.owner,
            entry.role,
            entry.environment,
            list(entry.apps),
        )
        for entry in version.hosts()
    ]


def read_table(spark: SparkSession, path: str) -> DataFrame | None:
    """The table, or None when nothing was ever written at path."""
    try:
        # A classic session fails in load(); Spark Connect resolves lazily, so ask for the schema.
        frame = spark.read.format("delta").load(path)
        frame.schema  # noqa: B018
    except AnalysisException as exc:
        if is_missing_table(exc):
            return None
        raise
    return frame


def loaded_versions(table: DataFrame | None) -> dict[int, tuple[int, int | None]]:
    """version -> (valid_from_ms, valid_to_ms) of every version in the table ({} when there is none)."""
    if table is None:
        return {}
    rows = table.select("version", "valid_from_ms", "valid_to_ms").distinct().collect()
    return {int(row["version"]): (int(row["valid_from_ms"]), row["valid_to_ms"]) for row in rows}
