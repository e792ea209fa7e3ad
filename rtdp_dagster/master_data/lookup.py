"""Master data lookups for the stream and the batch layer, and the pure-Python reader of the files.

- ``latest_version``: the newest master data version in the Delta table (a metadata-only query:
  the stream can ask every micro-batch whether a new version arrived).
- ``hosts_as_of``: one row per host of the version valid at a time, or of the latest version.
- ``enrich``: tags points with ``site``, ``app``, ``region``, ``master_version`` and
  ``host_known`` from one version (broadcast join; the stream's path).
- ``enrich_as_of``: the same with, per point, the version valid at its event time (the batch
  layer's path: silver is enriched with the master data of its day).
- ``with_master_data``: either of them on the host a point's tags name (``HOST_TAGS``), and every
  host unknown while there is no master data yet; ``master_data_tags`` puts the result in the tags.

A host missing from the master data gets ``unknown`` for site, app and region, a null
``master_version`` (no version describes it) and ``host_known`` false; points are never dropped
or duplicated.

Picking up a new version without a restart: ask ``latest_version`` between micro-batches and
call ``hosts_as_of`` again when it changed. (With Spark Connect an unchanged DataFrame already
reads the table as it is at each execution, because plans are resolved per execution; a classic
session may keep the snapshot it resolved, so do not rely on that there.)
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.master_data.files import load_master_data
from rtdp_dagster.master_data.table import PARTITION_COLUMN, read_table
from rtdp_dagster.master_data.tags import UNKNOWN, enriched_tags

__all__ = [
    "ENRICHED_COLUMNS",
    "HOST_TAGS",
    "UNKNOWN",
    "enrich",
    "enrich_as_of",
    "hosts_as_of",
    "latest_version",
    "load_master_data",
    "master_data_tags",
    "with_master_data",
]

ENRICHED_COLUMNS = ("site", "app", "region", "master_version", "host_known")
_TAGS = ("site", "app", "region")
# The point tags that name the host a point is about, the first one present winning.
HOST_TAGS = ("host", "instance")
# Lookup columns are renamed while joined so they cannot collide with the points' own columns.
_PREFIX = "__master_"


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The highest master data version in the table; None when nothing was loaded yet."""
    table = read_table(spark, path)
    if table is None:
        return None
    # Delta answers max() of a partition column from its log, without reading data files.
    row = table.agg(F.max(PARTITION_COLUMN).alias("latest")).first()
    return None if row is None or row["latest"] is None else int(row["latest"])


def hosts_as_of(spark: SparkSession, path: str, as_of_ms: int | None = None) -> DataFrame:
    """One row per host (every table column) of the version valid at as_of_ms; the latest if None.

    Before the first version's valid_from the result is empty, so every point enriches as unknown.
    """
    table = spark.read.format("delta").load(path)
    if as_of_ms is None:
        return table.where(F.col("valid_to_ms").isNull())
    at = F.lit(as_of_ms).cast("long")
    return table.where(_valid_at(at))


def _valid_at(ts: Column, prefix: str = "") -> Column:
    start, end = F.col(f"{prefix}valid_from_ms"), F.col(f"{prefix}valid_to_ms")
    return (start <= ts) & (end.isNull() | (ts < end))


def _check_points(points_df: DataFrame, *needed: str) -> None:
    columns = set(points_df.columns)
    missing = [name for name in needed if name not in columns]
    if missing:
        raise ValueError(f"points have no column {', '.join(missing)} (columns: {sorted(columns)})")
    clashing = [name for name in ENRICHED_COLUMNS if name in columns]
    if clashing:
        # Silently replacing a point's own tag with the master data's would hide disagreements.
        raise ValueError(f"points already have column(s) {', '.join(clashing)}: rename or drop them before enriching")


def _lookup(hosts_df: DataFrame, *extra: str) -> DataFrame:
    names = ("host", *_TAGS, "version", *extra)
    return F.broadcast(hosts_df.select(*(F.col(name).alias(_PREFIX + name) for name in names)))


def _tagged(joined: DataFrame, extra: tuple[str, ...] = ()) -> DataFrame:
    known = F.col(_PREFIX + "host").isNotNull()
    columns: dict[str, Column] = {
        name: F.when(known, F.col(_PREFIX + name)).otherwise(F.lit(UNKNOWN)) for name in _TAGS
    }
    columns["master_version"] = F.col(_PREFIX + "version")
    columns["host_known"] = known
    private = [_PREFIX + name for name in ("host", *_TAGS, "version", *extra)]
    return joined.withColumns(columns).drop(*private)


def enrich(points_df: DataFrame, hosts_df: DataFrame, host_column: str = "host") -> DataFrame:
    """Points with the ENRICHED_COLUMNS added from hosts_df (one row per host, e.g. ``hosts_as_of``)."""
    _check_points(points_df, host_column)
    lookup = _lookup(hosts_df)
    joined = points_df.join(lookup, F.col(host_column) == F.col(_PREFIX + "host"), "left")
    return _tagged(joined)


def enrich_as_of(
    points_df: DataFrame, versions_df: DataFrame, ts_column: str = "ums_ts_", host_column: str = "host"
) -> DataFrame:
    """Points with the ENRICHED_COLUMNS from the version valid at each point's event time (epoch ms).

    versions_df is the whole table (every version), e.g. ``spark.read.format("delta").load(path)``.
    """
    _check_points(points_df, host_column, ts_column)
    validity = ("valid_from_ms", "valid_to_ms")
    lookup = _lookup(versions_df, *validity)
    condition = (F.col(host_column) == F.col(_PREFIX + "host")) & _valid_at(F.col(ts_column), _PREFIX)
    return _tagged(points_df.join(lookup, condition, "left"), validity)


def with_master_data(points_df: DataFrame, master_df: DataFrame | None, valid_at: str | None = None) -> DataFrame:
    """Points with ``host_key`` (their first HOST_TAGS tag) and the ENRICHED_COLUMNS of that host.

    master_df is one row per host (``hosts_as_of``: the stream's path) or, when valid_at names the
    points' event-time column, the whole table (``enrich_as_of``: the batch layer's path); None while
    no master data was loaded, which makes every host unknown.
    """
    points_df = points_df.withColumn("host_key", F.coalesce(*(F.col("tags")[tag] for tag in HOST_TAGS)))
    if master_df is None:
        unknown = {name: F.lit(UNKNOWN) for name in _TAGS}
        return points_df.withColumns({**unknown, "master_version": F.lit(None).cast("int"), "host_known": F.lit(False)})
    if valid_at is None:
        return enrich(points_df, master_df, host_column="host_key")
    return enrich_as_of(points_df, master_df, ts_column=valid_at, host_column="host_key")


def master_data_tags() -> Column:
    """The tags of points from ``with_master_data``, with site and app as ``master_data.tags`` decides."""
    return enriched_tags(F.col("tags"), {"site": F.col("site"), "app": F.col("app")}, F.col("host_known"))
