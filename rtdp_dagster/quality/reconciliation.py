"""Reconciliation of one day along the whole path, with every difference explained.

    source (collection log) → Kafka (bronze + quarantine rows, by Kafka coordinates) → bronze
    → silver → realtime TSDB

Each stage's count is the previous one plus explained differences (``explained``, signed) plus
what nothing explains (``unexplained``, which fails the check):

- source: rows read by the collectors' windows that ended in the day; of them, the dead-lettered
  never reach Kafka.
- kafka: records of the day (event time; a quarantined record without a readable time by the day
  it arrived). From the logged windows: a window across midnight moves its points to the day they
  belong to; a window retried after a crash may have published records twice; records of sources
  without a collection log for the day (replays, other producers) are counted apart. A window logged
  after the stream's newest committed micro-batch was planned may still be on its way to bronze: its
  records are in flight (explained), and the day is checked again when they land (late-data sensor).
- bronze: Kafka records minus the quarantined (by reason). A record in both tables, or twice, is
  unexplained: bronze and quarantine are exactly-once by Kafka coordinates.
- silver: bronze minus duplicates (the same version read again), superseded versions
  (corrections, stale retractions) and retracted points, as silver's own rule picks the winner;
  judged on bronze as silver read it (its materialization's ``bronze_version``), the rows that
  landed since explained apart (the late-data sensor re-runs the day for them).
- realtime: silver points found in the realtime TSDB (metric, tags without the enriched site and
  app, time). A silver point missing there is explained when it arrived later than the stream's
  de-duplication watermark (late for realtime) or falls in a range the stream recorded as failed
  (``tsdb_repair``); a TSDB point missing from silver when it was retracted (a TSDB cannot delete
  one sample). Days outside the realtime retention are not compared.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.batch.silver import series_key_column
from rtdp_dagster.batch.steps import StepTimes
from rtdp_dagster.collection.state import CollectionState, collection_log
from rtdp_dagster.config import Settings
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.master_data.tags import ENRICHED_TAGS
from rtdp_dagster.streaming import tables
from rtdp_dagster.streaming.bronze import last_planned_at
from rtdp_dagster.tsdb.query import export_series, force_flush

STAGES = ("source", "kafka", "bronze", "silver", "realtime")
_RETENTION = re.compile(r"^(\d+)([hdwy])$")
_RETENTION_MS = {"h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS, "y": 365 * DAY_MS}
# A window logged this close before the stream's newest micro-batch counts as in flight: the collectors'
# and the Spark driver's clocks may differ, and a batch's time is taken just after its offsets are read.
IN_FLIGHT_MARGIN_MS = 10_000


@dataclass
class Stage:
    name: str
    count: int | None
    # Signed: how many rows each reason adds to (or takes from) the previous stage's count.
    explained: dict[str, int] = field(default_factory=dict)
    unexplained: int = 0
    note: str = ""


@dataclass
class Reconciliation:
    day: str
    stages: list[Stage]

    @property
    def passed(self) -> bool:
        return all(stage.unexplained == 0 for stage in self.stages)

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def markdown(self) -> str:
        lines = ["| stage | count | explained | unexplained |", "|---|---:|---|---:|"]
        for s in self.stages:
            reasons = ", ".join(f"{reason} {value:+d}" for reason, value in s.explained.items() if value) or "-"
            count = "-" if s.count is None else str(s.count)
            lines.append(f"| {s.name} | {count} | {reasons}{' (' + s.note + ')' if s.note else ''} | {s.unexplained} |")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Window:
    source: str
    wave: int
    start: int
    end: int
    rows_read: int
    rows_valid: int
    dead: int
    attempts: int
    logged_at: int


def _windows(state_url: str, start: int, end: int) -> list[_Window]:
    """Collection-log windows ending in (start, end + one day]: the day's, and the next day's first."""
    state = CollectionState(state_url)
    try:
        log = collection_log
        query = sa.select(log).where(log.c.window_end > start, log.c.window_end <= end + DAY_MS)
        with state.engine.connect() as connection:
            rows = connection.execute(query).all()
    finally:
        state.dispose()
    return [
        _Window(
            r.source,
            r.wave,
            r.window_start,
            r.window_end,
            r.rows_read,
            r.rows_valid,
            r.rows_dead_lettered,
            r.attempts,
            r.finished_at,
        )
        for r in rows
    ]


TablePath = Callable[[str], str]


def _coordinates(table: DataFrame) -> list[Column]:
    """A point's Kafka coordinates; its index in the record is 0 where a table has none (v1 only)."""
    index = F.col("kafka_index") if "kafka_index" in table.columns else F.lit(None)
    return [
        F.col("kafka_topic"),
        F.col("kafka_partition"),
        F.col("kafka_offset"),
        F.coalesce(index, F.lit(0)).cast("int").alias("kafka_index"),
    ]


def _records(spark: SparkSession, table_path: TablePath, first: dt.date, last: dt.date) -> DataFrame | None:
    """Bronze and quarantine records with event days first..last: coordinates, source, wave, time, reason."""
    parts = []
    bronze = read_table(spark, table_path(tables.BRONZE))
    if bronze is not None:
        columns = [
            *_coordinates(bronze),
            "source",
            F.col("wave").cast("int").alias("wave"),
            "ums_ts_",
            F.lit(None).cast("string").alias("reason"),
            "event_date",
        ]
        parts.append(bronze.where(F.col("event_date").between(F.lit(first), F.lit(last))).select(*columns))
    quarantine = read_table(spark, table_path(tables.QUARANTINE))
    if quarantine is not None:
        ts = F.get_json_object("raw_value", "$.ums_ts_").cast("long")
        day = F.coalesce(F.to_date(F.timestamp_millis(ts)), F.col("received_date"))
        columns = [
            *_coordinates(quarantine),
            F.get_json_object("raw_value", "$.source").alias("source"),
            F.get_json_object("raw_value", "$.wave").cast("int").alias("wave"),
            ts.alias("ums_ts_"),
            "reason",
            day.alias("event_date"),
        ]
        parts.append(quarantine.select(*columns).where(F.col("event_date").between(F.lit(first), F.lit(last))))
    if not parts:
        return None
    records = parts[0]
    for part in parts[1:]:
        records = records.unionByName(part)
    return records


def _in_window(source: str, wave: int, low: int, high: int) -> Column:
    return (F.col("source") == source) & (F.col("wave") == wave) & F.col("ums_ts_").between(low, high)


def _source_and_kafka(
    spark: SparkSession, settings: Settings, table_path: TablePath, day: dt.date
) -> tuple[Stage, Stage, Stage]:
    """The source, kafka and bronze stages, from one pass over the day's records (and the day before's
    when a window crosses midnight: a move counts the points of its time range in both days)."""
    start, end = ms_of_date(day), ms_of_date(day) + DAY_MS
    # Before the records are read: a batch committed meanwhile must not settle windows they lack.
    planned_at = last_planned_at(spark, table_path(tables.BRONZE))
    windows = _windows(settings.collection.state_url, start, end)
    own = [w for w in windows if w.end <= end]
    read, valid, dead = (sum(getattr(w, name) for w in own) for name in ("rows_read", "rows_valid", "dead"))
    source = Stage("source", read, {"dead_lettered": -dead}, abs(read - valid - dead))

    # A window's points in a day other than the window's end: (start, midnight) of windows across it.
    moves = [(w, w.start + 1, start - 1, -1) for w in own if w.start < start - 1]
    moves += [(w, w.start + 1, end - 1, +1) for w in windows if w.end > end and w.start < end - 1]
    # Without moves every figure is of the day's partition alone.
    first = day - dt.timedelta(days=1) if moves else day
    records = _records(spark, table_path, first, day)
    if records is None:
        return source, Stage("kafka", 0, {"dead_lettered": 0}, valid), Stage("bronze", 0, {}, 0)
    logged = sorted({w.source for w in windows})
    of_day = F.col("event_date") == F.lit(day)
    figures = [
        F.sum(of_day.cast("long")).alias("records"),
        # Bronze rows have no reason; the quarantined are counted by reason below, from quarantine alone.
        F.sum((of_day & F.col("reason").isNull()).cast("long")).alias("bronze"),
        F.sum((of_day & F.col("source").isin(logged)).cast("long")).alias("logged"),
        F.count_distinct(
            F.when(of_day, F.struct("kafka_topic", "kafka_partition", "kafka_offset", "kafka_index"))
        ).alias("distinct"),
    ]
    for index, (w, low, high, _) in enumerate(moves):
        figures.append(F.sum(_in_window(w.source, w.wave, low, high).cast("long")).alias(f"move_{index}"))
    row = records.agg(*figures).first()
    assert row is not None
    records_of_day, logged_of_day = int(row["records"] or 0), int(row["logged"] or 0)
    shift = sum(sign * int(row[f"move_{i}"] or 0) for i, (_, _, _, sign) in enumerate(moves))
    surplus = logged_of_day - (valid + shift)
    retried = sum(w.rows_valid for w in own if w.attempts > 1)
    redelivered = min(max(surplus, 0), retried)
    # Without a stream commit that says when it was planned, nothing is taken as in flight.
    unsettled = [] if planned_at is None else [w for w in windows if w.logged_at > planned_at - IN_FLIGHT_MARGIN_MS]
    in_flight = min(max(-surplus, 0), sum(w.rows_valid for w in unsettled))
    explained = {
        "dead_lettered": -dead,
        "window_across_midnight": shift,
        "redelivered_after_retry": redelivered,
        "in_flight": -in_flight,
        "not_from_a_logged_window": records_of_day - logged_of_day,
    }
    note = f"{len(unsettled)} windows logged after the stream's last batch: checked again when they land"
    kafka = Stage(
        "kafka", int(row["distinct"] or 0), explained, abs(surplus - redelivered + in_flight), note if in_flight else ""
    )
    # Records landing twice (bronze and quarantine, or twice in one) break exactly-once: unexplained.
    kafka.unexplained += records_of_day - kafka.count  # type: ignore[operator]
    # Bronze's branch of the union has no reason: Spark prunes it, so this reads quarantine only.
    rows = records.where(of_day & F.col("reason").isNotNull()).groupBy("reason").count().collect()
    quarantined = {f"quarantined_{r['reason']}": -int(r["count"]) for r in sorted(rows, key=lambda r: r["reason"])}
    bronze_count = int(row["bronze"] or 0)
    expected = (kafka.count or 0) + sum(quarantined.values())
    return source, kafka, Stage("bronze", bronze_count, quarantined, abs(bronze_count - expected))


def _silver_stage(bronze_day: DataFrame, silver_count: int, bronze_count: int, pinned: bool) -> Stage:
    """bronze_day: the day's bronze as silver read it (pinned: an older version than bronze_count's,
    whose extra rows landed after silver's read)."""
    latest = F.struct("ums_id_", "kafka_partition", "kafka_offset", "kafka_topic")
    groups = bronze_day.groupBy("point_key").agg(
        F.count(F.lit(1)).alias("n"),
        F.count_distinct(F.struct("ums_op_", "value")).alias("versions"),
        F.max_by("ums_op_", latest).alias("winner"),
    )
    retracted = F.col("winner") == "d"
    row = groups.agg(
        F.sum("n").alias("rows"),
        F.sum(F.when(retracted, F.col("n"))).alias("retracted"),
        F.sum(F.when(~retracted, F.col("n") - F.col("versions"))).alias("duplicates"),
        F.sum(F.when(~retracted, F.col("versions") - 1)).alias("superseded"),
    ).first()
    assert row is not None
    landed_after_read = bronze_count - int(row["rows"] or 0) if pinned else 0
    explained = {"landed_after_silver_read": -landed_after_read}
    explained |= {name: -int(row[name] or 0) for name in ("duplicates", "superseded", "retracted")}
    expected = bronze_count + sum(explained.values())
    return Stage("silver", silver_count, explained, abs(silver_count - expected))


def _identity(metric: Column, tags: Column) -> Column:
    """A point's series without the tags enrichment sets (the stream and silver may enrich differently)."""
    return series_key_column(metric, F.map_filter(tags, lambda key, _: ~key.isin(*ENRICHED_TAGS)))


def _exporter(url: str, start: int, end: int, timeout_s: float):
    def export(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            for metric in frame["metric"]:
                keys, stamps = [], []
                for series in export_series(url, metric, {}, timeout_s, start, end - 1):
                    labels = {k: v for k, v in series["tags"].items() if k not in ENRICHED_TAGS}
                    key = metric + "|" + ",".join(f"{k}={labels[k]}" for k in sorted(labels))
                    for ts, _ in series["points"]:
                        keys.append(key)
                        stamps.append(int(ts))
                yield pd.DataFrame(
                    {"identity": pd.Series(keys, dtype="object"), "ums_ts_": pd.Series(stamps, dtype="int64")}
                )

    return export


def _realtime_stage(
    spark: SparkSession,
    settings: Settings,
    table_path: TablePath,
    day: dt.date,
    silver_day: DataFrame,
    bronze_day: DataFrame,
) -> Stage:
    start, end = ms_of_date(day), ms_of_date(day) + DAY_MS
    retention = _RETENTION.match(settings.stack.victoria_metrics.realtime.retention)
    if retention and end < time.time() * 1000 - int(retention[1]) * _RETENTION_MS[retention[2]]:
        return Stage("realtime", None, note="outside the realtime TSDB's retention")
    force_flush(settings.tsdb.realtime.url, settings.tsdb.timeout_s)
    metrics = bronze_day.select("metric").distinct()
    exported = metrics.repartition(max(1, min(8, settings.spark.shuffle_partitions)))
    tsdb = exported.mapInPandas(
        _exporter(settings.tsdb.realtime.url, start, end, max(settings.tsdb.timeout_s, 60.0)),
        "identity string, ums_ts_ long",
    ).distinct()
    silver = silver_day.select(_identity(F.col("metric"), F.col("tags")).alias("identity"), "ums_ts_").distinct()
    arrival_lag = F.min(F.unix_millis("kafka_timestamp")) - F.first("ums_ts_")
    points = bronze_day.groupBy(_identity(F.col("metric"), F.col("tags")).alias("identity"), "ums_ts_").agg(
        (arrival_lag > settings.stream.dedup_ttl_s * 1000).alias("late"),
        (F.max_by("ums_op_", F.struct("ums_id_", "kafka_partition", "kafka_offset", "kafka_topic")) == "d").alias(
            "retracted"
        ),
    )
    repair = read_table(spark, table_path(tables.TSDB_REPAIR))
    ranges = [] if repair is None else repair.where((F.col("max_ts") >= start) & (F.col("min_ts") < end)).collect()
    failed = F.lit(False)
    for failure in ranges:  # time ranges of micro-batches whose puts failed
        failed = failed | F.col("ums_ts_").between(int(failure["min_ts"]), int(failure["max_ts"]))
    keys = ["identity", "ums_ts_"]
    both = (
        silver.withColumn("in_silver", F.lit(True))
        .join(tsdb.withColumn("in_tsdb", F.lit(True)), keys, "full_outer")
        .join(points, keys, "left")
    )
    in_silver, in_tsdb = F.coalesce(F.col("in_silver"), F.lit(False)), F.coalesce(F.col("in_tsdb"), F.lit(False))
    late, retracted = F.coalesce(F.col("late"), F.lit(False)), F.coalesce(F.col("retracted"), F.lit(False))
    missing, extra = in_silver & ~in_tsdb, in_tsdb & ~in_silver

    def count(condition: Column) -> Column:
        return F.coalesce(F.sum(condition.cast("long")), F.lit(0))

    row = both.agg(
        count(in_tsdb).alias("total"),
        count(missing & late).alias("late"),
        count(missing & ~late & failed).alias("failed"),
        count(extra & retracted).alias("retracted"),
        (count(missing & ~late & ~failed) + count(extra & ~retracted)).alias("unexplained"),
    ).first()
    assert row is not None
    explained = {
        "late_for_realtime": -row["late"],
        "tsdb_write_failed": -row["failed"],
        "retraction_not_applied": row["retracted"],
    }
    return Stage("realtime", row["total"], explained, row["unexplained"])


def reconcile_day(
    spark: SparkSession,
    settings: Settings,
    day: dt.date,
    *,
    table_path: TablePath | None = None,
    realtime: bool = True,
    silver_read: int = -1,
    times: StepTimes | None = None,
) -> Reconciliation:
    """The day's reconciliation; table_path: where the Delta tables are (default: the configured root);
    silver_read: the bronze version silver's materialization of the day read (-1: unknown, the newest),
    so rows landing in bronze after it are explained, not missing from silver; times: the seconds of
    its stages (``source_kafka_bronze``, ``silver``, ``realtime``) are added there."""
    times = times or StepTimes()
    table_path = table_path or settings.delta.table_path
    with times.step("source_kafka_bronze"):
        source, kafka, bronze_stage = _source_and_kafka(spark, settings, table_path, day)
    stages = [source, kafka, bronze_stage]
    bronze_count = bronze_stage.count or 0
    bronze = read_table(spark, table_path(tables.BRONZE))
    silver = read_table(spark, table_path("silver"))
    if bronze is not None and silver_read >= 0:
        bronze = spark.read.format("delta").option("versionAsOf", silver_read).load(table_path(tables.BRONZE))
    bronze_day = None if bronze is None else bronze.where(F.col("event_date") == F.lit(day))
    silver_day = None if silver is None else silver.where(F.col("event_date") == F.lit(day))
    with times.step("silver"):
        silver_count = 0 if silver_day is None else silver_day.count()
        if bronze_day is None or silver_day is None:
            stages.append(
                Stage("silver", silver_count, {}, abs(silver_count - bronze_count), "no bronze or silver table")
            )
            return Reconciliation(day.isoformat(), stages)
        stages.append(_silver_stage(bronze_day, silver_count, bronze_count, pinned=silver_read >= 0))
    if realtime:
        with times.step("realtime"):
            stages.append(_realtime_stage(spark, settings, table_path, day, silver_day, bronze_day))
    return Reconciliation(day.isoformat(), stages)
