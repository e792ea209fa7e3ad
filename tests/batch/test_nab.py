"""Silver and every rollup level over the real NAB CloudWatch series equal an independent pandas computation.

Bronze holds every CSV row (wave 1) and every fifth hour again (wave 2: same values, higher
``ums_id_``). Two files repeat a timestamp twelve times (2014-03-09 03:00, the US daylight-saving
switch, with different values in one of them): silver keeps the file's last row, the one a
collector reads last and so numbers with the highest ``ums_id_``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from pyspark.sql import DataFrame

from rtdp_dagster.batch.rollups import MEASURES, rollup_columns, rollup_points, rollup_rollups
from rtdp_dagster.batch.silver import SILVER_COLUMNS, silver_for_days
from rtdp_dagster.envelope.keys import point_key
from tests.batch.bronze_rows import ms, write_bronze
from tests.batch.nab_reference import nab_records, reference_rollup, reference_silver

DAY = dt.date(2014, 3, 9)


@pytest.fixture(scope="module")
def nab(spark, stack, nab_dir: Path) -> SimpleNamespace:
    root = Path(stack.delta.root) / f"batch-nab-{uuid.uuid4().hex[:8]}"
    bronze = write_bronze(spark, nab_records(nab_dir), str(root / "bronze"))
    reference = reference_silver(nab_dir)
    reference["day"] = pd.to_datetime(reference["ts_ms"], unit="ms").dt.date
    first_rows = reference.drop_duplicates("series_key")
    identities = zip(first_rows["metric"], first_rows["tags"], strict=True)
    series = dict(zip(first_rows["series_key"], identities, strict=True))
    return SimpleNamespace(bronze=bronze, reference=reference, series=series, root=root)


def _utc_date(ts_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).date()


def _collected(frame: DataFrame, level: str, series: dict) -> dict[tuple[str, int], tuple]:
    """The rollup as {(series_key, bucket_start): measures}, after checking each row's other columns."""
    assert frame.columns == rollup_columns(level)
    result = {}
    for row in frame.collect():
        assert (row["metric"], row["tags"]) == series[row["series_key"]]
        if level in ("1m", "1h", "1d"):
            assert row["bucket_date"] == _utc_date(row["bucket_start"])
        else:
            assert row["bucket_year"] == _utc_date(row["bucket_start"]).year
        key = (row["series_key"], row["bucket_start"])
        assert key not in result, f"two rows for {key}"
        result[key] = tuple(row[name] for name in MEASURES)
    return result


def _assert_same(got: dict, expected: dict, level: str) -> None:
    assert got.keys() == expected.keys(), f"{level}: buckets differ, e.g. {sorted(got.keys() ^ expected.keys())[:3]}"
    wrong = [(key, got[key], expected[key]) for key in expected if got[key] != expected[key]]
    assert not wrong, f"{level}: {len(wrong)} of {len(expected)} buckets differ, e.g. {wrong[:2]}"


def test_a_day_of_silver_is_one_row_per_point_with_the_last_version(nab: SimpleNamespace) -> None:
    silver = silver_for_days(nab.bronze, [DAY])
    assert silver.columns == SILVER_COLUMNS
    rows = silver.collect()
    expected = nab.reference[nab.reference["day"] == DAY]
    # Two files cover the day: 288 five-minute slots each, 11 of each twelve repeats dropped.
    assert len(rows) == len(expected) == 2 * 288 - 2 * 11
    assert {(r["series_key"], r["ums_ts_"]): r["value"] for r in rows} == dict(
        zip(zip(expected["series_key"], expected["ts_ms"], strict=True), expected["value"], strict=True)
    )
    for row in rows:
        metric, tags = nab.series[row["series_key"]]
        assert (row["metric"], row["tags"], row["event_date"]) == (metric, tags, DAY)
        assert row["point_key"] == point_key(metric, tags, row["ums_ts_"])
    # The repeated 03:00 timestamp: of twelve rows (42.0, 103.2, ..., 68.4, 60.0), the last one,
    # as wave 2 read it (03:00 is in a re-read hour).
    at_three = ms("2014-03-09 03:00")
    repeated = [r for r in rows if r["metric"] == "cloudwatch.ec2.network_in" and r["ums_ts_"] == at_three]
    assert [(r["value"], r["ums_id_"]) for r in repeated] == [(60.0, 2 * 10**9 + 2128)]


def test_rollups_of_the_day_equal_pandas(nab: SimpleNamespace) -> None:
    silver = silver_for_days(nab.bronze, [DAY])
    expected_silver = nab.reference[nab.reference["day"] == DAY]
    for level in ("1m", "1h", "1d"):
        got = _collected(rollup_points(silver, level), level, nab.series)
        _assert_same(got, reference_rollup(expected_silver, level), level)


def test_every_level_over_the_whole_data_set_equals_pandas(nab: SimpleNamespace) -> None:
    days = sorted(set(nab.reference["day"]))
    # Each level is materialised once (as its table would be), so the next one does not recompute it.
    silver = silver_for_days(nab.bronze, days).localCheckpoint()
    minutes = rollup_points(silver, "1m").localCheckpoint()
    hours = rollup_rollups(minutes, "1h", finer_level="1m").localCheckpoint()
    daily = rollup_rollups(hours, "1d", finer_level="1h").localCheckpoint()
    levels = {
        "1m": minutes,
        "1h": hours,
        "1d": daily,
        "1w": rollup_rollups(daily, "1w", finer_level="1d"),
        "1mo": rollup_rollups(daily, "1mo", finer_level="1d"),
        "1y": rollup_rollups(daily, "1y", finer_level="1d"),
    }
    for level, frame in levels.items():
        expected = reference_rollup(nab.reference, level)
        _assert_same(_collected(frame, level, nab.series), expected, level)
    # The data spans 2013-10 to 2014-04: two years, five months, many ISO weeks.
    assert {key[1] for key in reference_rollup(nab.reference, "1y")} == {ms("2013-01-01"), ms("2014-01-01")}
