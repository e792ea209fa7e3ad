"""The days of silver and the daily rollups that a run or a backfill is still computing.

A run covers the day of its ``dagster/partition`` tag, or the days from
``dagster/asset_partition_range_start`` to ``_end`` (a single-run backfill's range). A backfill in
progress covers every day it targets, also before it has launched the run for them. Whatever cannot
be read (a run of these assets without partition tags, a backfill in an older format) covers every
day: waiting is safe, a re-run overlapping a write is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import dagster as dg

DAILY_ASSETS = frozenset({"silver", "rollup_1m", "rollup_1h", "rollup_1d"})
DAILY_JOB = "daily_batch_job"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Runs created and not yet finished (a run the sensor requests is NOT_STARTED before it is queued).
ACTIVE_RUNS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# BulkActionStatus values of backfills that may still launch or hold runs (compared by value: the
# enum is not part of Dagster's public API).
ACTIVE_BACKFILLS = frozenset({"REQUESTED", "CANCELING", "FAILING"})
# The newest backfills looked at; an older one still in progress is not expected.
BACKFILLS_CHECKED = 50


@dataclass
class BusyDays:
    """Days (YYYY-MM-DD) being computed: single days, inclusive ranges, or every day."""

    days: set[str] = field(default_factory=set)
    ranges: list[tuple[str, str]] = field(default_factory=list)
    every_day: bool = False
    # Who holds them, for the sensor's skip reason.
    holders: list[str] = field(default_factory=list)

    def covers(self, day: str) -> bool:
        # Daily keys are ISO dates: string order is date order.
        return self.every_day or day in self.days or any(start <= day <= end for start, end in self.ranges)


def _writes_daily_assets(job_name: str | None, asset_keys: Iterable[dg.AssetKey] | None) -> bool:
    names = {key.to_user_string() for key in asset_keys or ()}
    return job_name == DAILY_JOB or bool(names & DAILY_ASSETS)


def _add_run(busy: BusyDays, run: dg.DagsterRun) -> None:
    tags = run.tags
    if PARTITION_TAG in tags:
        busy.days.add(tags[PARTITION_TAG])
    elif RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        busy.ranges.append((tags[RANGE_START_TAG], tags[RANGE_END_TAG]))
    else:
        busy.every_day = True
    busy.holders.append(f"run {run.run_id[:8]}")


def _backfill_days(backfill) -> set[str] | None:
    """The days of the daily assets a backfill targets; None when they cannot be read."""
    if not backfill.is_asset_backfill:
        # A backfill of the daily job: its partition names are days.
        return set(backfill.partition_names) if backfill.partition_names is not None else None
    data = backfill.asset_backfill_data
    if data is None:
        # Stored in the older serialized form, readable only with the asset graph.
        return None
    days: set[str] = set()
    for key, subset in data.target_subset.partitions_subsets_by_asset_key.items():
        if key.to_user_string() in DAILY_ASSETS:
            days.update(subset.get_partition_keys())
    return days


def busy_days(instance: dg.DagsterInstance) -> BusyDays:
    """The days that active runs and backfills of silver and the daily rollups cover."""
    busy = BusyDays()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_RUNS)):
        if _writes_daily_assets(run.job_name, run.asset_selection):
            _add_run(busy, run)
    for backfill in instance.get_backfills(limit=BACKFILLS_CHECKED):
        if backfill.status.value not in ACTIVE_BACKFILLS:
            continue
        if not backfill.is_asset_backfill and backfill.job_name != DAILY_JOB:
            continue
        if backfill.is_asset_backfill and not _writes_daily_assets(None, backfill.asset_selection):
            continue
        days = _backfill_days(backfill)
        if days is None:
            busy.every_day = True
        else:
            busy.days.update(days)
        busy.holders.append(f"backfill {backfill.backfill_id}")
    return busy
