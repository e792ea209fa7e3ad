"""When a week, month or year rollup is recomputed: the automation condition of the coarse levels.

``AutomationCondition.eager()`` only looks at the latest time window, which for these partitions
(end_offset=1) is the period still in progress: a closed week would never get its Sunday (that day
closes on Monday), nor a re-run day of a closed week, month or year. This condition looks at the
days instead: a coarse partition is requested once a day inside it changed since the partition was
last requested and since it was last written (a backfill or a manual run writes days and then their
week, month and year itself: requesting them again after it would compute them twice), as long as
retention keeps a day inside, nothing inside is still being computed and the blocking checks of
rollup_1d passed. Every part carries a label, so the UI's automation view
says why a partition waits.

The quality checks are not partitioned: "passed" is the latest result of each blocking check of
rollup_1d, which judged the days of the latest run that materialized it.
"""

import datetime as dt

import dagster as dg

DAY_CHANGED = "a day inside changed since last requested"
DAY_CHANGED_SINCE_WRITTEN = "a day inside changed since last written"
DAY_KEPT = "a day inside kept by retention"
NO_DAY_IN_PROGRESS = "no day inside still being computed"
NOT_IN_PROGRESS = "not already being computed"
CHECKS_PASSED = "blocking checks of rollup_1d passed"


def coarse_rollup_condition(retention_days: int) -> dg.AutomationCondition:
    """Requests each week, month or year whose days changed, once they are done and checked."""
    # Both sides of the `since` are plain timed conditions, not and/or combinations: they carry the
    # times of their events, so a day that lands in the same tick as the partition's request (after
    # it) still counts as a change. A missing day does not hold a partition back (eager's
    # ~any_deps_missing): before the start date, not run yet or failed, it changes it when it lands.
    day_changed = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    day_kept = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.in_latest_time_window(lookback_delta=dt.timedelta(days=retention_days))
    )
    return (
        day_changed.since(dg.AutomationCondition.newly_requested()).with_label(DAY_CHANGED)
        & day_changed.since(dg.AutomationCondition.newly_updated()).with_label(DAY_CHANGED_SINCE_WRITTEN)
        & day_kept.with_label(DAY_KEPT)
        & (~dg.AutomationCondition.any_deps_in_progress()).with_label(NO_DAY_IN_PROGRESS)
        & (~dg.AutomationCondition.in_progress()).with_label(NOT_IN_PROGRESS)
        & dg.AutomationCondition.all_deps_blocking_checks_passed().with_label(CHECKS_PASSED)
    ).with_label("recompute when a day inside changed")
