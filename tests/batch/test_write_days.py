"""write_days replaces exactly the given partitions: re-runs are idempotent, other days are untouched."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import DataFrame, SparkSession

from rtdp_dagster.batch.silver import SILVER_COLUMNS, silver_for_days, write_silver_days
from rtdp_dagster.batch.writes import replace_where, write_days
from rtdp_dagster.spark.session import delta_version
from tests.batch.bronze_rows import Record, bronze_frame, ms

DAY, OTHER = dt.date(2024, 2, 28), dt.date(2024, 2, 29)
SERIES = ("sys.mem.used", {"host": "h1"})


def _bronze(spark: SparkSession, retract_noon: bool = False) -> DataFrame:
    records = [
        Record(*SERIES, ms(f"{day} {hour:02d}:00"), float(hour), ums_id=100, offset=i)
        for i, (day, hour) in enumerate((day, hour) for day in (DAY, OTHER) for hour in range(0, 24, 6))
    ]
    if retract_noon:
        records.append(Record(*SERIES, ms(f"{DAY} 12:00"), None, ums_id=200, op="d", offset=99))
    return bronze_frame(spark, records)


def _content(spark: SparkSession, path: str, day: dt.date) -> list[tuple]:
    """The day's rows in time order, every column (tags as sorted items)."""
    rows = spark.read.format("delta").load(path).where(f"event_date = DATE'{day}'").collect()
    return sorted(
        (row["ums_ts_"], *(sorted(row[name].items()) if name == "tags" else row[name] for name in SILVER_COLUMNS))
        for row in rows
    )


def _files(spark: SparkSession, path: str, day: dt.date) -> set[str]:
    return {name for name in spark.read.format("delta").load(path).inputFiles() if f"event_date={day}" in name}


def test_rerunning_a_day_replaces_exactly_that_day(spark, table_path) -> None:
    path = table_path("silver")
    write_silver_days(silver_for_days(_bronze(spark), [DAY, OTHER]), path, [DAY, OTHER])
    day_before, other_before = _content(spark, path, DAY), _content(spark, path, OTHER)
    other_files = _files(spark, path, OTHER)
    assert len(day_before) == len(other_before) == 4

    for _ in range(2):
        write_silver_days(silver_for_days(_bronze(spark), [DAY]), path, [DAY])
        assert _content(spark, path, DAY) == day_before
    assert delta_version(spark, path) == 2
    assert _files(spark, path, OTHER) == other_files
    assert _content(spark, path, OTHER) == other_before

    # A late retraction for DAY: the re-run drops the point, the other day keeps its files.
    write_silver_days(silver_for_days(_bronze(spark, retract_noon=True), [DAY]), path, [DAY])
    assert [row[0] for row in _content(spark, path, DAY)] == [ms(f"{DAY} {hour:02d}:00") for hour in (0, 6, 18)]
    assert _files(spark, path, OTHER) == other_files
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("operationParameters").collect()
    predicates = [row[0]["predicate"] for row in history[:3]]
    assert all(str(DAY) in predicate and str(OTHER) not in predicate for predicate in predicates)


def test_a_row_outside_the_days_is_refused(spark, table_path) -> None:
    path = table_path("silver")
    write_silver_days(silver_for_days(_bronze(spark), [DAY]), path, [DAY])
    with pytest.raises(Exception, match=r"(?i)DELTA_REPLACE_WHERE_MISMATCH|does not conform"):
        write_days(silver_for_days(_bronze(spark), [DAY, OTHER]), path, [DAY], "event_date")
    assert delta_version(spark, path) == 0
    assert not _files(spark, path, OTHER)


def test_replace_where_predicate() -> None:
    assert replace_where("event_date", [OTHER, DAY, DAY]) == "`event_date` IN (DATE'2024-02-28', DATE'2024-02-29')"
    assert replace_where("bucket_year", [2024, 2023]) == "`bucket_year` IN (2023, 2024)"
    with pytest.raises(ValueError):
        replace_where("event_date", [])
    with pytest.raises(TypeError):
        replace_where("event_date", [dt.datetime(2024, 1, 1)])
