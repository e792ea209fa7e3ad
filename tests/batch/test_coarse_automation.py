"""The automation condition of the week, month and year rollups, evaluated on the project's own
definitions against an ephemeral instance: rollup_1d days and their check results are reported to
the instance as the daily runs would record them. No stack needed.

Days are counted from the evaluation time, which is now or a time computed from now (the turn of
next year, a retention ahead), never a calendar date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pytest

from rtdp_dagster.batch.automation import CHECKS_PASSED, DAY_CHANGED, DAY_CHANGED_SINCE_WRITTEN
from rtdp_dagster.config import load_settings
from tests.recent_days import partition_keys

ROLLUP_1D = dg.AssetKey("rollup_1d")
COARSE = {"1w": dg.AssetKey("rollup_1w"), "1mo": dg.AssetKey("rollup_1mo"), "1y": dg.AssetKey("rollup_1y")}
NOTHING = {"1w": set(), "1mo": set(), "1y": set()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _next_new_year(hour: int = 1) -> dt.datetime:
    """01:00 UTC on 1 January of next year: this year is closed and its 31 December is a day partition."""
    return dt.datetime(_now().year + 1, 1, 1, hour, tzinfo=dt.UTC)


def _last_sunday(at: dt.datetime) -> dt.date:
    """The Sunday that closed the latest ISO week before ``at``."""
    today = at.date()
    return today - dt.timedelta(days=today.weekday() + 1)


class Ticks:
    """The automation ticks of one instance: reports what daily runs record, evaluates the project's
    coarse rollups at a given time, carrying the cursor from tick to tick."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        from rtdp_dagster.definitions import defs

        self.instance = instance
        self.defs = defs
        self.cursor = None
        self.check_names = sorted(
            key.name
            for key in defs.resolve_asset_graph().get(ROLLUP_1D).check_keys
            if defs.resolve_asset_graph().get(key).blocking
        )
        self.result: dg.EvaluateAutomationConditionsResult | None = None

    def day_materialized(self, day: dt.date, *, failed_check: str | None = None) -> None:
        """rollup_1d of ``day`` written, then its blocking checks: all passed, or ``failed_check`` failed."""
        self.instance.report_runless_asset_event(dg.AssetMaterialization(ROLLUP_1D, partition=day.isoformat()))
        for name in self.check_names:
            self.check_result(name, passed=name != failed_check)

    def check_result(self, name: str, *, passed: bool) -> None:
        self.instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=ROLLUP_1D, check_name=name, passed=passed)
        )

    def coarse_materialized(self, requested: dict[str, set[str]]) -> None:
        """The requested weeks, months and years ran."""
        for level, keys in requested.items():
            for key in keys:
                self.instance.report_runless_asset_event(dg.AssetMaterialization(COARSE[level], partition=key))

    def tick(self, at: dt.datetime) -> dict[str, set[str]]:
        """One evaluation; the requested partitions of each coarse level."""
        self.result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(*COARSE.values()),
            evaluation_time=at,
            cursor=self.cursor,
        )
        self.cursor = self.result.cursor
        return {level: {str(k) for k in self.result.get_requested_partitions(key)} for level, key in COARSE.items()}

    def true_for(self, level: str, label: str) -> set[str]:
        """The partitions of a level for which the part of the condition with ``label`` was true."""
        assert self.result is not None
        (root,) = [r for r in self.result.results if r.key == COARSE[level]]
        found = list(_with_label(root, label))
        assert found, f"no part labelled {label!r} in the condition of {COARSE[level].to_user_string()}"
        return set(found[0].true_subset.expensively_compute_partition_keys())


def _with_label(result, label: str) -> Iterator:
    if result.condition.get_label() == label:
        yield result
    for child in result.child_results:
        yield from _with_label(child, label)


def _containing(day: dt.date) -> dict[str, set[str]]:
    keys = partition_keys(day)
    return {level: {keys[level]} for level in COARSE}


@pytest.fixture
def ticks() -> Iterator[Ticks]:
    with dg.instance_for_test() as instance:
        yield Ticks(instance)


def test_a_closed_week_gets_its_sunday(ticks: Ticks) -> None:
    at = _now()
    sunday = _last_sunday(at)
    assert ticks.tick(at) == NOTHING
    ticks.day_materialized(sunday)  # lands on Monday or later: the week is no longer the latest window
    assert ticks.tick(at) == _containing(sunday)


def test_a_closed_month_gets_its_last_day(ticks: Ticks) -> None:
    at = _now()
    last_day = at.date().replace(day=1) - dt.timedelta(days=1)
    ticks.tick(at)
    ticks.day_materialized(last_day)
    requested = ticks.tick(at)
    assert requested["1mo"] == {last_day.replace(day=1).isoformat()}
    assert requested == _containing(last_day)


def test_a_closed_year_gets_its_31_december(ticks: Ticks) -> None:
    at = _next_new_year()
    new_years_eve = at.date() - dt.timedelta(days=1)
    ticks.tick(at)
    ticks.day_materialized(new_years_eve)
    requested = ticks.tick(at)
    assert requested["1y"] == {str(new_years_eve.year)}
    assert requested == _containing(new_years_eve)


def test_a_rerun_day_of_a_closed_week_month_and_year_requests_them_again(ticks: Ticks) -> None:
    # Ten days into next year: the day's week, month (December) and year are all closed.
    at = _next_new_year() + dt.timedelta(days=10)
    day = dt.date(at.year - 1, 12, 20)
    ticks.tick(at)
    ticks.day_materialized(day)
    first = ticks.tick(at)
    assert first == _containing(day)
    ticks.coarse_materialized(first)
    assert ticks.tick(at) == NOTHING, "handled: nothing more until a day changes"

    ticks.day_materialized(day)  # late data or a Kappa replay re-ran the day
    assert ticks.tick(at) == _containing(day)


def test_a_day_older_than_retention_requests_nothing(ticks: Ticks) -> None:
    retention = dt.timedelta(days=load_settings().batch.retention_days)
    expired = _last_sunday(_now())
    # A retention after the end of the Sunday's year: its week, month and year hold no kept day.
    at = dt.datetime(expired.year + 1, 1, 2, 1, tzinfo=dt.UTC) + retention
    kept = at.date() - dt.timedelta(days=1)
    ticks.tick(at)
    ticks.day_materialized(expired)
    assert ticks.tick(at) == NOTHING
    ticks.day_materialized(kept)
    assert ticks.tick(at) == _containing(kept)


def test_a_failed_blocking_check_holds_week_month_and_year_until_it_passes(ticks: Ticks) -> None:
    at = _now()
    sunday = _last_sunday(at)
    failing = ticks.check_names[0]
    ticks.tick(at)
    ticks.day_materialized(sunday, failed_check=failing)
    assert ticks.tick(at) == NOTHING
    for level, keys in _containing(sunday).items():
        # What the UI shows for the partition: its day changed, its checks did not pass.
        assert keys <= ticks.true_for(level, DAY_CHANGED), level
        assert not keys & ticks.true_for(level, CHECKS_PASSED), level
    assert ticks.tick(at) == NOTHING, "still waiting on the next tick"

    ticks.check_result(failing, passed=True)  # the data was fixed and the check run again
    assert ticks.tick(at) == _containing(sunday)


def test_a_day_that_lands_right_after_its_week_was_requested_requests_it_again(ticks: Ticks) -> None:
    at = _now()
    sunday = _last_sunday(at)
    ticks.tick(at)
    ticks.day_materialized(sunday)
    assert ticks.tick(at) == _containing(sunday)
    # Changed again before the next tick: the requested run may have read the day before this change.
    ticks.day_materialized(sunday)
    assert ticks.tick(_now()) == _containing(sunday)


def test_a_week_month_and_year_written_after_their_day_by_a_backfill_are_not_requested_again(ticks: Ticks) -> None:
    at = _now()
    sunday = _last_sunday(at)
    ticks.tick(at)
    # A backfill (or a manual run) writes the day, then its week, month and year, between two ticks.
    ticks.day_materialized(sunday)
    ticks.coarse_materialized(_containing(sunday))
    assert ticks.tick(at) == NOTHING, "written after the day changed: nothing to recompute"
    for level, keys in _containing(sunday).items():
        assert keys <= ticks.true_for(level, DAY_CHANGED), level
        assert not keys & ticks.true_for(level, DAY_CHANGED_SINCE_WRITTEN), level

    ticks.day_materialized(sunday)  # late data re-ran the day after the backfill
    assert ticks.tick(_now()) == _containing(sunday)
