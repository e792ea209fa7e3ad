"""The demo's backfill reaches the day silver's freshness check expects, whatever the time of day."""

import datetime as dt

import pytest

from rtdp_dagster.demo.run import backfill_ranges
from rtdp_dagster.quality.freshness import day_expected_by

DEADLINE = "30 1 * * *"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [("2031-03-02T01:29:59", "2031-02-28"), ("2031-03-02T01:30:00", "2031-03-01"), ("2031-03-02T23:00", "2031-03-01")],
)
def test_the_expected_day_is_the_one_before_the_latest_passed_deadline(now: str, expected: str) -> None:
    assert day_expected_by(DEADLINE, at(now)).isoformat() == expected


@pytest.mark.parametrize("now", ["2031-03-02T00:10", "2031-03-02T01:31", "2031-03-02T18:00"])
@pytest.mark.parametrize("history_days", [0.5, 1, 2])
def test_the_silver_range_covers_the_expected_day_and_ends_yesterday(now: str, history_days: float) -> None:
    first, last = backfill_ranges(history_days, at(now), DEADLINE)["silver"]
    assert first <= day_expected_by(DEADLINE, at(now)).isoformat() <= last == "2031-03-01"
    assert first >= "2031-02-28"  # never more than the history and the freshness day need
