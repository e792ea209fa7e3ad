"""The expectation suites on real Spark, Delta and Great Expectations: a clean NAB day passes every
check; each seeded defect fails exactly its check, with the exact count."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.batch.rollups import SUM_TYPE
from rtdp_dagster.config import Settings
from rtdp_dagster.quality.evaluate import points_checks, rollup_checks
from rtdp_dagster.quality.outcomes import CheckOutcome
from tests.batch.bronze_rows import Record, write_bronze
from tests.batch.nab_reference import nab_records

from .days import FIVE_MINUTES, bronze_and_silver, by_check, failures, silver_rows, write_rollups, write_silver_rows

NAB_DAY = dt.date(2014, 4, 12)  # eight CloudWatch series, each every five minutes all day
DAY = dt.date(2024, 5, 1)
START = ms_of_date(DAY)


def every_check(tables: dict, day: dt.date, settings: Settings) -> list[CheckOutcome]:
    run = f"test-{uuid.uuid4().hex[:6]}"
    outcomes = points_checks(tables["bronze"], "bronze", day, settings, run)
    outcomes += points_checks(tables["silver"], "silver", day, settings, run)
    outcomes += rollup_checks({"rollup_1m": tables["rollup_1m"]}, "1m", day, settings, run)
    level_1h = {"rollup_1h": tables["rollup_1h"], "finer": tables["rollup_1m"]}
    outcomes += rollup_checks(level_1h, "1h", day, settings, run)
    level_1d = {"rollup_1d": tables["rollup_1d"], "finer": tables["rollup_1h"], "silver": tables["silver"]}
    return outcomes + rollup_checks(level_1d, "1d", day, settings, run)


def test_a_clean_nab_day_passes_every_check(spark, stack: Settings, nab_dir: Path, tmp_path: Path) -> None:
    records = [r for r in nab_records(nab_dir) if r.ts_ms // DAY_MS == ms_of_date(NAB_DAY) // DAY_MS]
    tables = bronze_and_silver(spark, records, NAB_DAY, Path(stack.delta.root) / f"quality-{uuid.uuid4().hex[:8]}")
    outcomes = every_check(tables, NAB_DAY, stack)

    assert failures(outcomes) == {}
    checks = by_check(outcomes)
    assert len(checks) == 4 + 8 + 1 + 2 + 3  # bronze, silver, rollup_1m, rollup_1h, rollup_1d
    completeness = checks["silver.completeness"]
    assert completeness.details == {"series": 8, "missing_points": 0, "gaps": 0, "missing_share_by_series": {}}
    for outcome in outcomes:
        assert outcome.suite_version.startswith("1-") and outcome.docs_page, outcome
        assert Path(outcome.docs_page).is_file() and outcome.docs_page.endswith(".html")


def _series(metric: str, host: str, values: list[float], *, skip: range = range(0)) -> list[Record]:
    return [
        Record(metric, {"host": host}, START + i * FIVE_MINUTES, value, ums_id=1, offset=i)
        for i, value in enumerate(values)
        if i not in skip
    ]


def defective_day() -> tuple[list[Record], list[Record], Record]:
    """Per series one defect: (points in bronze and silver, silver-only duplicates, a point of the next day)."""
    cpu = [float(i % 100) for i in range(288)]
    out_of_range = _series("sys.cpu.util", "a", cpu)
    for i, value in ((10, 150.0), (20, -5.0), (30, 100.5)):
        out_of_range[i].value = value
    gap = _series("sys.cpu.util", "b", cpu, skip=range(120, 144))  # 10:00 to 11:55 missing: 24 points
    unique = _series("sys.mem.used", "c", [512.0] * 288)
    counter = [float(1000 + 10 * i) for i in range(288)]
    counter[100] = counter[99] - 10  # a step down that is no reset
    counter[200:] = [float(3 + 10 * i) for i in range(88)]  # a reset: back to almost nothing
    counters = _series("app.requests.count", "d", counter)
    wrong_day = Record("sys.cpu.util", {"host": "e"}, START + DAY_MS + 7_200_000, 5.0, ums_id=1)
    points = out_of_range + gap + unique + counters + _series("sys.cpu.util", "e", cpu)
    return points, unique[5:7], wrong_day


def test_each_seeded_defect_fails_exactly_its_check_with_the_exact_count(
    spark, stack: Settings, tmp_path: Path
) -> None:
    root = Path(stack.delta.root) / f"quality-{uuid.uuid4().hex[:8]}"
    points, duplicates, wrong_day = defective_day()
    bronze = write_bronze(spark, points, str(root / "bronze"))
    # The stray point sits in the day's partition with a time of the next day.
    wrong_row = silver_rows([wrong_day], event_date=DAY)
    spark.createDataFrame([(*r.row()[:-1], DAY) for r in [wrong_day]], bronze.schema).write.format("delta").mode(
        "append"
    ).save(str(root / "bronze"))
    silver = write_silver_rows(spark, silver_rows(points + duplicates) + wrong_row, str(root / "silver"))
    rollups = write_rollups(spark, silver, DAY, root)
    # A daily sum that disagrees with its hours and with silver.
    daily = rollups["rollup_1d"]
    one_more = (daily["sum"] + 1).cast(SUM_TYPE)
    tampered = daily.withColumn(
        "sum", F.when(daily["series_key"] == "sys.cpu.util|host=a", one_more).otherwise(daily["sum"])
    ).localCheckpoint()
    tampered.write.format("delta").mode("overwrite").save(str(root / "rollup_1d"))
    tables = {"bronze": spark.read.format("delta").load(str(root / "bronze")), "silver": silver, **rollups}
    tables["rollup_1d"] = spark.read.format("delta").load(str(root / "rollup_1d"))

    outcomes = every_check(tables, DAY, stack)

    assert failures(outcomes) == {
        "bronze.value_range": 3,
        "bronze.in_partition_day": 1,
        "silver.value_range": 3,
        "silver.in_partition_day": 1,
        "silver.point_key_unique": 2,
        "silver.series_time_unique": 2,
        "silver.counter_monotonic": 1,
        "silver.completeness": 24,
        "rollup_1d.matches_finer": 1,
        "rollup_1d.matches_silver": 1,
    }
    checks = by_check(outcomes)
    assert checks["silver.completeness"].failing_series == 1
    assert checks["silver.completeness"].details["missing_share_by_series"] == {"sys.cpu.util|host=b": 0.0833}
    assert checks["silver.completeness"].sample[0]["series_key"] == "sys.cpu.util|host=b"
    assert checks["silver.completeness"].sample[0]["gaps"] == 1
    assert checks["silver.completeness"].severity == "WARN"
    assert checks["silver.counter_monotonic"].sample[0]["counter_decreases_ts"] == "2024-05-01T08:20:00Z"
    assert checks["silver.value_range"].sample == [
        {
            "series_key": "sys.cpu.util|host=a",
            "kind": "percent",
            "out_of_range": 3,
            "out_of_range_ts": "2024-05-01T00:50:00Z",
            "out_of_range_value": 150.0,
        }
    ]
    assert checks["silver.in_partition_day"].sample[0]["outside_day_ts"] == "2024-05-02T02:00:00Z"
    assert checks["rollup_1d.matches_silver"].sample[0]["series_key"] == "sys.cpu.util|host=a"
    assert all(o.severity == "ERROR" for o in outcomes if o.check not in ("completeness", "counter_monotonic"))


def _judged(outcomes: list[CheckOutcome]) -> dict[tuple[str, str], tuple]:
    """(day, asset.check) -> everything a check reports but its Data Docs page (samples and details as
    text: 3 and 3.0 are equal, but not as shown)."""
    return {
        (o.day, f"{o.asset}.{o.check}"): (o.passed, o.failing_rows, o.failing_series, repr(o.sample), repr(o.details))
        for o in outcomes
    }


def test_the_days_of_a_run_are_judged_in_one_pass_as_each_day_alone(spark, stack: Settings) -> None:
    """A backfill checks its days together: each day gets exactly the outcomes it gets checked alone, the
    day before it included in its cadence history, a day without data included. Points outside their
    partition's day lie in the other day of the run: one in the first day's partition at a time of the
    second; in the second day's partition, one inside the first day's gap (the first day, alone, never
    reads it, so neither does it together) and the only point of its series."""
    root = Path(stack.delta.root) / f"quality-{uuid.uuid4().hex[:8]}"
    points, duplicates, wrong_day = defective_day()
    # The next day: the same series, one hole of ten points in host e's instead of the stray point.
    hole = range(START + DAY_MS + 40 * FIVE_MINUTES, START + DAY_MS + 50 * FIVE_MINUTES)
    next_day = [dataclasses.replace(r, ts_ms=r.ts_ms + DAY_MS) for r in points]
    next_day = [r for r in next_day if not (r.tags["host"] == "e" and r.ts_ms in hole)]
    in_the_gap = Record("sys.cpu.util", {"host": "b"}, START + 130 * FIVE_MINUTES, 5.0, ums_id=1)
    alone_in_its_series = Record("sys.cpu.util", {"host": "f"}, START + 12 * FIVE_MINUTES, 5.0, ums_id=1)
    days = [DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)]
    rows = silver_rows(points + duplicates + next_day) + silver_rows([wrong_day], event_date=DAY)
    rows += silver_rows([in_the_gap, alone_in_its_series], event_date=days[1])
    silver = write_silver_rows(spark, rows, str(root / "silver"))
    rollups = [write_rollups(spark, silver, day, root) for day in days[:2]][-1]  # the tables, with both days
    level_1d = {"rollup_1d": rollups["rollup_1d"], "finer": rollups["rollup_1h"], "silver": silver}

    together = points_checks(silver, "silver", days, stack, "test-days")
    together += rollup_checks(level_1d, "1d", days, stack, "test-days")
    alone = [o for day in days for o in points_checks(silver, "silver", day, stack, f"test-{day}")]
    alone += [o for day in days for o in rollup_checks(level_1d, "1d", day, stack, f"test-{day}")]

    assert _judged(together) == _judged(alone)
    first, second, empty = ([o for o in together if o.day == day.isoformat()] for day in days)
    assert failures(first)["silver.completeness"] == 24
    assert failures(second) == {
        "silver.value_range": 3,
        "silver.in_partition_day": 2,
        "silver.counter_monotonic": 1,
        "silver.completeness": 24 + 10,
    }
    assert failures(empty) == {} and len(empty) == len(first)
    # Counts stay integers in a day without nulls, as when it is collected alone (host f has no
    # completeness figures on the second day: no point inside it).
    completeness = by_check(first)["silver.completeness"].sample[0]
    assert type(completeness["observed"]) is int and type(completeness["missing"]) is int, completeness


@pytest.mark.parametrize("dataset", ["bronze", "silver"])
def test_a_table_of_another_shape_fails_its_schema_check(spark, stack: Settings, dataset: str) -> None:
    frame = spark.createDataFrame([("m", 1.0, DAY)], "metric string, value string, event_date date")
    outcomes = by_check(points_checks(frame, dataset, DAY, stack, "test-schema"))
    assert not outcomes[f"{dataset}.schema"].passed
    assert outcomes[f"{dataset}.schema"].failing_rows >= 2
    assert all(not o.passed and o.details for key, o in outcomes.items() if not key.endswith(".schema"))


def test_two_rows_of_one_series_and_time_fail_their_check_whatever_their_keys(spark, stack: Settings) -> None:
    """A point_key that is not the hash of its identity kept a second value of one point in silver:
    point keys are unique, only (series, time) shows it."""
    root = Path(stack.delta.root) / f"quality-{uuid.uuid4().hex[:8]}"
    points = _series("sys.mem.used", "f", [512.0] * 288)
    clean = write_silver_rows(spark, silver_rows(points), str(root / "clean"))
    forged = dataclasses.replace(points[7], value=9.0, ums_id=2)
    (row,) = silver_rows([forged])
    forged_row = (*row[:5], "0" * 32, *row[6:])  # the point_key column
    twice = write_silver_rows(spark, [*silver_rows(points), forged_row], str(root / "twice"))

    assert by_check(points_checks(clean, "silver", DAY, stack, "test-clean"))["silver.series_time_unique"].passed
    checks = by_check(points_checks(twice, "silver", DAY, stack, "test-forged-key"))
    assert checks["silver.point_key_unique"].passed
    found = checks["silver.series_time_unique"]
    assert not found.passed and found.failing_rows == 1 and found.severity == "ERROR"
    assert found.sample[0]["series_key"] == "sys.mem.used|host=f"
    assert found.sample[0]["duplicate_times_ts"] == "2024-05-01T00:35:00Z"
