"""Silver from bronze: duplicates collapse, the highest ums_id_ wins, retractions remove, only the asked days."""

from __future__ import annotations

import datetime as dt

import pytest

from rtdp_dagster.batch.silver import SILVER_COLUMNS, silver_for_days
from rtdp_dagster.envelope.keys import series_key
from tests.batch.bronze_rows import Record, bronze_frame, ms, write_bronze

DAY = dt.date(2024, 3, 5)
NEXT_DAY = dt.date(2024, 3, 6)
CPU = ("sys.cpu.util", {"site": "s1", "host": "h1", "app": "web-1"})  # tags not in key order
BARE = ("sys.uptime", {})


def _at(minute: int) -> int:
    return ms("2024-03-05 10:00") + minute * 60_000


def _records() -> list[Record]:
    metric, tags = CPU
    offsets = iter(range(1, 1000))

    def rec(minute: int, value: float | None, ums_id: int, op: str = "i", **kw) -> Record:
        kw.setdefault("offset", next(offsets))
        return Record(metric, tags, _at(minute), value, ums_id, op, **kw)

    return [
        # minute 0: read by three waves → one row, the latest read.
        rec(0, 1.0, 100, wave=1),
        rec(0, 1.0, 300, wave=3),
        rec(0, 1.0, 200, wave=2),
        # minute 1: corrected.
        rec(1, 1.0, 100),
        rec(1, 2.0, 200, "u"),
        # minute 2: a correction published before an older version: ums_id_ decides, not arrival.
        rec(2, 5.0, 200, "u", offset=1),
        rec(2, 1.0, 100, offset=900),
        # minute 3: retracted.
        rec(3, 1.0, 100),
        rec(3, None, 200, "d"),
        # minute 4: retracted, then corrected again: back, with the correction.
        rec(4, 1.0, 100),
        rec(4, None, 200, "d"),
        rec(4, 7.0, 300, "u"),
        # minute 5: a stale retraction loses against a later version.
        rec(5, None, 100, "d"),
        rec(5, 3.0, 200),
        # minutes 6 and 7: equal ums_id_: the higher Kafka partition, then the higher offset wins.
        rec(6, 1.0, 100, partition=2, offset=10),
        rec(6, 2.0, 100, partition=1, offset=50),
        rec(7, 1.0, 100, partition=1, offset=80),
        rec(7, 2.0, 100, partition=1, offset=90),
        # the next UTC day, and a series without tags.
        Record(metric, tags, ms("2024-03-06 00:00"), 9.0, 100, offset=70),
        Record(*BARE, _at(0), 42.0, 100, offset=71),
    ]


EXPECTED_DAY = {
    # minute: (value, ums_id_, ums_op_)
    0: (1.0, 300, "i"),
    1: (2.0, 200, "u"),
    2: (5.0, 200, "u"),
    4: (7.0, 300, "u"),
    5: (3.0, 200, "i"),
    6: (1.0, 100, "i"),
    7: (2.0, 100, "i"),
}


def _by_minute(rows) -> dict[int, tuple]:
    cpu = [row for row in rows if row["metric"] == CPU[0] and row["event_date"] == DAY]
    minutes = {(row["ums_ts_"] - _at(0)) // 60_000: (row["value"], row["ums_id_"], row["ums_op_"]) for row in cpu}
    assert len(minutes) == len(cpu), "more than one row for a point"
    return minutes


def test_versions_corrections_and_retractions(spark, table_path) -> None:
    bronze = write_bronze(spark, _records(), table_path("bronze"))
    silver = silver_for_days(bronze, [DAY])
    assert silver.columns == SILVER_COLUMNS
    rows = silver.collect()
    assert _by_minute(rows) == EXPECTED_DAY
    assert {row["event_date"] for row in rows} == {DAY}
    by_metric = {row["metric"]: row for row in rows}
    assert by_metric[CPU[0]]["series_key"] == series_key(*CPU) == "sys.cpu.util|app=web-1,host=h1,site=s1"
    assert by_metric[CPU[0]]["tags"] == CPU[1]
    assert by_metric[BARE[0]]["series_key"] == series_key(*BARE) == "sys.uptime|"
    assert {row["source"] for row in rows} == {"test"}

    both = silver_for_days(bronze, [DAY, NEXT_DAY]).collect()
    assert len(both) == len(rows) + 1
    assert [row["value"] for row in both if row["event_date"] == NEXT_DAY] == [9.0]


def test_the_winner_does_not_depend_on_input_order_or_tasks(spark) -> None:
    # The same records in another order, split differently, deduplicated by several tasks: the
    # same silver, ties included.
    shuffled = bronze_frame(spark, list(reversed(_records()))).repartition(5)
    assert _by_minute(silver_for_days(shuffled, [DAY], rows_per_task=4).collect()) == EXPECTED_DAY


def test_reads_only_the_columns_it_needs(spark, table_path, capsys: pytest.CaptureFixture[str]) -> None:
    bronze = write_bronze(spark, _records()[:2], table_path("bronze"))
    # Plans shorten each field to 100 characters unless told otherwise.
    spark.conf.set("spark.sql.maxMetadataStringLength", "10000")
    try:
        silver_for_days(bronze, [DAY]).explain()
    finally:
        spark.conf.unset("spark.sql.maxMetadataStringLength")
    plan = capsys.readouterr().out
    read_schema = plan[plan.index("ReadSchema:") :].splitlines()[0]
    assert "point_key" in read_schema and "kafka_offset" in read_schema
    for unused in ("collected_at", "schema_version", "wave", "kafka_timestamp", "batch_id", "ingested_at"):
        assert unused not in read_schema
    assert "PartitionFilters: [" in plan and "event_date" in plan[plan.index("PartitionFilters:") :].splitlines()[0]


def test_needs_a_day(spark) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        silver_for_days(bronze_frame(spark, _records()[:1]), [])
