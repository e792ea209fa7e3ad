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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


def _of_days(days: Sequence[dt.date]) -> Column:
    return F.col("event_date").isin(list(days))


def _per_day(days: Sequence[dt.date], values: Callable[[dt.date], Column]) -> Column:
    """One column whose value on a row of day d is values(d) (null on other days)."""
    column = None
    for day in days:
        on_day = F.col("event_date") == F.lit(day)
        column = F.when(on_day, values(day)) if column is None else column.when(on_day, values(day))
    assert column is not None
    return column


@dataclass(frozen=True)
class _Move:
    """A window's points in a day other than the window's end, counted in both days (sign: -1 in the
    window's own day, +1 in the day the points belong to)."""

    day: dt.date
    window: _Window
    low: int
    high: int
    sign: int


def _moves(day: dt.date, windows: list[_Window]) -> list[_Move]:
    start, end = ms_of_date(day), ms_of_date(day) + DAY_MS
    moves = [_Move(day, w, w.start + 1, start - 1, -1) for w in windows if w.end <= end and w.start < start - 1]
    return moves + [_Move(day, w, w.start + 1, end - 1, +1) for w in windows if w.end > end and w.start < end - 1]


def _source_and_kafka(
    spark: SparkSession, settings: Settings, table_path: TablePath, days: Sequence[dt.date]
) -> dict[dt.date, tuple[Stage, Stage, Stage]]:
    """The source, kafka and bronze stages of each day, from one pass over the days' records (and the day
    before's when a window crosses midnight: a move counts the points of its time range in both days)."""
    first, last = min(days), max(days)
    # Before the records are read: a batch committed meanwhile must not settle windows they lack.
    planned_at = last_planned_at(spark, table_path(tables.BRONZE))
    all_windows = _windows(settings.collection.state_url, ms_of_date(first), ms_of_date(last) + DAY_MS)
    # Each day's: windows ending in the day, and the next day's first.
    windows = {day: [w for w in all_windows if ms_of_date(day) < w.end <= ms_of_date(day) + 2 * DAY_MS] for day in days}
    moves = [move for day in days for move in _moves(day, windows[day])]
    # Without moves every figure is of the days' partitions alone.
    records = _records(spark, table_path, first - dt.timedelta(days=1) if moves else first, last)
    figures: dict[dt.date, dict[str, int]] = {day: {} for day in days}
    quarantined: dict[dt.date, dict[str, int]] = {day: {} for day in days}
    move_counts = [0] * len(moves)
    if records is not None:
        logged = {day: sorted({w.source for w in windows[day]}) for day in days}
        aggregates = [
            F.count(F.lit(1)).alias("records"),
            # Bronze rows have no reason; the quarantined are counted by reason below, from quarantine alone.
            F.sum(F.col("reason").isNull().cast("long")).alias("bronze"),
            F.sum(_per_day(days, lambda day: F.col("source").isin(logged[day])).cast("long")).alias("logged"),
            F.count_distinct(F.struct("kafka_topic", "kafka_partition", "kafka_offset", "kafka_index")).alias(
                "distinct"
            ),
        ]
        aggregates += [
            F.sum(_in_window(m.window.source, m.window.wave, m.low, m.high).cast("long")).alias(f"move_{i}")
            for i, m in enumerate(moves)
        ]
        for row in records.groupBy("event_date").agg(*aggregates).collect():
            day = row["event_date"]
            if day in figures:
                figures[day] = {name: int(row[name] or 0) for name in ("records", "bronze", "logged", "distinct")}
            for i, move in enumerate(moves):  # a move counts its points in the move's day and the one before
                if move.day - dt.timedelta(days=1) <= day <= move.day:
                    move_counts[i] += int(row[f"move_{i}"] or 0)
        # Bronze's branch of the union has no reason: Spark prunes it, so this reads quarantine only.
        reasons = records.where(_of_days(days) & F.col("reason").isNotNull()).groupBy("event_date", "reason").count()
        for row in sorted(reasons.collect(), key=lambda r: r["reason"]):
            quarantined[row["event_date"]][f"quarantined_{row['reason']}"] = -int(row["count"])
    stages = {}
    for day in days:
        shift = sum(move.sign * count for move, count in zip(moves, move_counts, strict=True) if move.day == day)
        stages[day] = _day_stages(
            day, windows[day], figures[day], shift, quarantined[day], planned_at, records is not None
        )
    return stages


def _day_stages(
    day: dt.date,
    windows: list[_Window],
    figures: dict[str, int],
    shift: int,
    quarantined: dict[str, int],
    planned_at: int | None,
    has_records: bool,
) -> tuple[Stage, Stage, Stage]:
    """One day's source, kafka and bronze stages from its windows and the figures of its records."""
    end = ms_of_date(day) + DAY_MS
    own = [w for w in windows if w.end <= end]
    read, valid, dead = (sum(getattr(w, name) for w in own) for name in ("rows_read", "rows_valid", "dead"))
    source = Stage("source", read, {"dead_lettered": -dead}, abs(read - valid - dead))
    if not has_records:
        return source, Stage("kafka", 0, {"dead_lettered": 0}, valid), Stage("bronze", 0, {}, 0)
    records_of_day, logged_of_day = figures.get("records", 0), figures.get("logged", 0)
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
    distinct = figures.get("distinct", 0)
    kafka = Stage("kafka", distinct, explained, abs(surplus - redelivered + in_flight), note if in_flight else "")
    # Records landing twice (bronze and quarantine, or twice in one) break exactly-once: unexplained.
    kafka.unexplained += records_of_day - distinct
    bronze_count = figures.get("bronze", 0)
    expected = distinct + sum(quarantined.values())
    return source, kafka, Stage("bronze", bronze_count, quarantined, abs(bronze_count - expected))


def _silver_stages(
    bronze_days: DataFrame, silver_counts: dict[dt.date, int], bronze_counts: dict[dt.date, int], pinned: bool
) -> dict[dt.date, Stage]:
    """bronze_days: the days' bronze as silver read it (pinned: an older version than bronze_counts',
    whose extra rows landed after silver's read)."""
    latest = F.struct("ums_id_", "kafka_partition", "kafka_offset", "kafka_topic")
    groups = bronze_days.groupBy("event_date", "point_key").agg(
        F.count(F.lit(1)).alias("n"),
        F.count_distinct(F.struct("ums_op_", "value")).alias("versions"),
        F.max_by("ums_op_", latest).alias("winner"),
    )
    retracted = F.col("winner") == "d"
    rows = groups.groupBy("event_date").agg(
        F.sum("n").alias("rows"),
        F.sum(F.when(retracted, F.col("n"))).alias("retracted"),
        F.sum(F.when(~retracted, F.col("n") - F.col("versions"))).alias("duplicates"),
        F.sum(F.when(~retracted, F.col("versions") - 1)).alias("superseded"),
    )
    by_day = {row["event_date"]: row for row in rows.collect()}
    stages = {}
    for day, bronze_count in bronze_counts.items():
        row = by_day.get(day)
        read_rows = int(row["rows"] or 0) if row else 0
        explained = {"landed_after_silver_read": -(bronze_count - read_rows if pinned else 0)}
        explained |= {name: -int((row[name] if row else 0) or 0) for name in ("duplicates", "superseded", "retracted")}
        expected = bronze_count + sum(explained.values())
        silver_count = silver_counts.get(day, 0)
        stages[day] = Stage("silver", silver_count, explained, abs(silver_count - expected))
    return stages


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


def _in_retention(settings: Settings, day: dt.date) -> bool:
    retention = _RETENTION.match(settings.stack.victoria_metrics.realtime.retention)
    end = ms_of_date(day) + DAY_MS
    return not (retention and end < time.time() * 1000 - int(retention[1]) * _RETENTION_MS[retention[2]])


def _realtime_stages(
    spark: SparkSession,
    settings: Settings,
    table_path: TablePath,
    days: Sequence[dt.date],
    silver: DataFrame,
    bronze: DataFrame,
) -> dict[dt.date, Stage]:
    """Each day's realtime stage, from one export of the TSDB over the days and one comparison."""
    stages = {day: Stage("realtime", None, note="outside the realtime TSDB's retention") for day in days}
    days = [day for day in days if _in_retention(settings, day)]
    if not days:
        return stages
    start, end = ms_of_date(min(days)), ms_of_date(max(days)) + DAY_MS
    force_flush(settings.tsdb.realtime.url, settings.tsdb.timeout_s)
    silver_days, bronze_days = silver.where(_of_days(days)), bronze.where(_of_days(days))
    metrics = bronze_days.select("metric").distinct()
    exported = metrics.repartition(max(1, min(8, settings.spark.shuffle_partitions)))
    tsdb = (
        exported.mapInPandas(
            _exporter(settings.tsdb.realtime.url, start, end, max(settings.tsdb.timeout_s, 60.0)),
            "identity string, ums_ts_ long",
        )
        .distinct()
        .withColumn("tsdb_date", F.to_date(F.timestamp_millis("ums_ts_")))
    )
    silver = silver_days.select(
        _identity(F.col("metric"), F.col("tags")).alias("identity"), "ums_ts_", "event_date"
    ).distinct()
    arrival_lag = F.min(F.unix_millis("kafka_timestamp")) - F.first("ums_ts_")
    points = bronze_days.groupBy(_identity(F.col("metric"), F.col("tags")).alias("identity"), "ums_ts_").agg(
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

    rows = both.groupBy(F.coalesce(F.col("event_date"), F.col("tsdb_date")).alias("day")).agg(
        count(in_tsdb).alias("total"),
        count(missing & late).alias("late"),
        count(missing & ~late & failed).alias("failed"),
        count(extra & retracted).alias("retracted"),
        (count(missing & ~late & ~failed) + count(extra & ~retracted)).alias("unexplained"),
    )
    by_day = {row["day"]: row for row in rows.collect()}
    for day in days:
        row = by_day.get(day)
        figures = {
            name: int(row[name]) if row else 0 for name in ("total", "late", "failed", "retracted", "unexplained")
        }
        explained = {
            "late_for_realtime": -figures["late"],
            "tsdb_write_failed": -figures["failed"],
            "retraction_not_applied": figures["retracted"],
        }
        stages[day] = Stage("realtime", figures["total"], explained, figures["unexplained"])
    return stages


def reconcile_days(
    spark: SparkSession,
    settings: Settings,
    days: Sequence[dt.date],
    *,
    table_path: TablePath | None = None,
    realtime: bool = True,
    silver_reads: Mapping[dt.date, int] | None = None,
    times: StepTimes | None = None,
) -> list[Reconciliation]:
    """Each day's reconciliation, every stage computed for all days in one pass (a backfill's range costs
    about what one day does). table_path: where the Delta tables are (default: the configured root);
    silver_reads: the bronze version silver's materialization of each day read (-1 or absent: unknown, the
    newest), so rows landing in bronze after it are explained, not missing from silver; times: the seconds
    of the stages (``source_kafka_bronze``, ``silver``, ``realtime``) are added there."""
    days = sorted(set(days))
    if not days:
        return []
    times = times or StepTimes()
    table_path = table_path or settings.delta.table_path
    reads = {day: (silver_reads or {}).get(day, -1) for day in days}
    with times.step("source_kafka_bronze"):
        path_stages = _source_and_kafka(spark, settings, table_path, days)
    stages = {day: list(path_stages[day]) for day in days}
    bronze_counts = {day: path_stages[day][2].count or 0 for day in days}
    bronze = read_table(spark, table_path(tables.BRONZE))
    silver = read_table(spark, table_path("silver"))
    with times.step("silver"):
        silver_counts = {}
        if silver is not None:
            counted = silver.where(_of_days(days)).groupBy("event_date").count().collect()
            silver_counts = {row["event_date"]: int(row["count"]) for row in counted}
        if bronze is None or silver is None:
            for day in days:
                silver_count, bronze_count = silver_counts.get(day, 0), bronze_counts[day]
                note = "no bronze or silver table"
                stages[day].append(Stage("silver", silver_count, {}, abs(silver_count - bronze_count), note))
            return [Reconciliation(day.isoformat(), stages[day]) for day in days]
        # Bronze as each version of silver's reads read it; days of one version are compared in one pass.
        as_read = {
            version: bronze
            if version < 0
            else spark.read.format("delta").option("versionAsOf", version).load(table_path(tables.BRONZE))
            for version in sorted(set(reads.values()))
        }
        for version, read in as_read.items():
            counts = {day: bronze_counts[day] for day in days if reads[day] == version}
            pinned = version >= 0
            for day, stage in _silver_stages(read.where(_of_days(list(counts))), silver_counts, counts, pinned).items():
                stages[day].append(stage)
    if realtime:
        # The TSDB is compared with bronze as silver read it when all days read one version.
        compared = next(iter(as_read.values())) if len(as_read) == 1 else bronze
        with times.step("realtime"):
            realtime_stages = _realtime_stages(spark, settings, table_path, days, silver, compared)
        for day in days:
            stages[day].append(realtime_stages[day])
    return [Reconciliation(day.isoformat(), stages[day]) for day in days]


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
    """One day's reconciliation (``reconcile_days`` of that day alone)."""
    reads = {day: silver_read}
    return reconcile_days(
        spark, settings, [day], table_path=table_path, realtime=realtime, silver_reads=reads, times=times
    )[0]
