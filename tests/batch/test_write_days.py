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


def _state(spark: SparkSession, path: str) -> dict[dt.date, tuple[list[tuple], set[str]]]:
    """Per day: its rows in time order (every column, tags as sorted items) and its data files."""
    table = spark.read.format("delta").load(path)
    state: dict[dt.date, tuple[list[tuple], set[str]]] = {day: ([], set()) for day in (DAY, OTHER)}
    for row in table.collect():
        values = (sorted(row[name].items()) if name == "tags" else row[name] for name in SILVER_COLUMNS)
        state[row["event_date"]][0].append((row["ums_ts_"], *values))
    for name in table.inputFiles():
        state[DAY if f"event_date={DAY}" in name else OTHER][1].add(name)
    return {day: (sorted(rows), files) for day, (rows, files) in state.items()}


def test_rerunning_a_day_replaces_exactly_that_day(spark, table_path) -> None:
    path = table_path("silver")
    write_silver_days(silver_for_days(_bronze(spark), [DAY, OTHER]), path, [DAY, OTHER])
    before = _state(spark, path)
    assert len(before[DAY][0]) == len(before[OTHER][0]) == 4

    for _ in range(2):
        write_silver_days(silver_for_days(_bronze(spark), [DAY]), path, [DAY])
    after = _state(spark, path)
    assert delta_version(spark, path) == 2
    assert after[DAY][0] == before[DAY][0]  # the same content (in new files)
    assert after[OTHER] == before[OTHER]  # the same content in the same files

    # A late retraction for DAY: the re-run drops the point, the other day keeps its files.
    write_silver_days(silver_for_days(_bronze(spark, retract_noon=True), [DAY]), path, [DAY])
    retracted = _state(spark, path)
    assert [row[0] for row in retracted[DAY][0]] == [ms(f"{DAY} {hour:02d}:00") for hour in (0, 6, 18)]
    assert retracted[OTHER] == before[OTHER]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("operationParameters").collect()
    predicates = [row[0]["predicate"] for row in history[:3]]
    assert all(str(DAY) in predicate and str(OTHER) not in predicate for predicate in predicates)


def test_a_row_outside_the_days_is_refused(spark, table_path) -> None:
    path = table_path("silver")
    write_silver_days(silver_for_days(_bronze(spark), [DAY]), path, [DAY])
    with pytest.raises(Exception, match=r"(?i)DELTA_REPLACE_WHERE_MISMATCH|does not conform"):
        write_days(silver_for_days(_bronze(spark), [DAY, OTHER]), path, [DAY], "event_date")
    assert delta_version(spark, path) == 0
    assert not _state(spark, path)[OTHER][0]


def test_replace_where_predicate() -> None:
    assert replace_where("event_date", [OTHER, DAY, DAY]) == "`event_date` IN (DATE'2024-02-28', DATE'2024-02-29')"
    assert replace_where("bucket_year", [2024, 2023]) == "`bucket_year` IN (2023, 2024)"
    with pytest.raises(ValueError):
        replace_where("event_date", [])
    with pytest.raises(TypeError):
        replace_where("event_date", [dt.datetime(2024, 1, 1)])
