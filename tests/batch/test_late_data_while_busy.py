"""The late-data sensor beside runs and backfills still computing its days: those days wait, keep
their commits ahead of the cursor, and are folded into that run or re-run once it is over.

Bronze is a hand-written Delta log here (the sensor reads only the log), so no stack is needed.
"""

import datetime as dt
import json
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from rtdp_dagster.batch.busy_days import busy_days
from tests.batch.test_late_data_sensor import evaluate
from tests.recent_days import today

DAILY = ("silver", "rollup_1m", "rollup_1h", "rollup_1d")
# Closed days counted back from today (``tests.recent_days``): no calendar overtakes them.
DAY_1 = (today() - dt.timedelta(days=19)).isoformat()
DAY_4 = (today() - dt.timedelta(days=16)).isoformat()
DAY_5 = (today() - dt.timedelta(days=15)).isoformat()
DAY_6 = (today() - dt.timedelta(days=14)).isoformat()
DAY_7 = (today() - dt.timedelta(days=13)).isoformat()
DAY_8 = (today() - dt.timedelta(days=12)).isoformat()


def commit(root: Path, version: int, *days: str) -> None:
    """Bronze commit `version` adding one file per day, as the stream's appends do."""
    log = root / "bronze" / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    actions = [{"commitInfo": {"operation": "WRITE"}}] + [
        {"add": {"path": f"event_date={day}/part-{version}.parquet", "partitionValues": {"event_date": day}}}
        for day in days
    ]
    (log / f"{version:020d}.json").write_text("\n".join(json.dumps(action) for action in actions) + "\n")


def requested(result: dg.SensorResult) -> dict[str, str]:
    return {str(r.partition_key): str(r.run_key) for r in result.run_requests or []}


def materialized(instance: dg.DagsterInstance, day: str, bronze_version: int | None = None) -> None:
    """Silver of the day materialized, its read having seen bronze up to bronze_version."""
    metadata = {} if bronze_version is None else {"bronze_version": bronze_version}
    instance.report_runless_asset_event(dg.AssetMaterialization("silver", partition=day, metadata=metadata))


def active_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict[str, str], **run) -> str:
    """A run of the daily assets in `status`, as the daemon or a sensor would have created it."""
    fields = {"job_name": "__ASSET_JOB", "asset_selection": frozenset(dg.AssetKey(a) for a in DAILY), **run}
    # Dagster wants to know where a queued run is launched from.
    location = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("rtdp"), "__repository__")
    origin = RemoteJobOrigin(location, fields["job_name"])
    return instance.add_run(dg.DagsterRun(status=status, tags=tags, remote_job_origin=origin, **fields)).run_id


def single_run_backfill_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def test_days_of_a_backfill_run_wait_then_fold_what_it_read_and_rerun_what_came_after(tmp_path: Path) -> None:
    commit(tmp_path, 0, DAY_5)
    commit(tmp_path, 1, DAY_6)
    commit(tmp_path, 2, DAY_5)  # after the backfill's silver read bronze (v1)
    commit(tmp_path, 3, DAY_7)  # a day no run is computing
    with dg.instance_for_test() as instance:
        for day in (DAY_5, DAY_6):
            materialized(instance, day, bronze_version=1)  # the backfill's silver step, its rollups still running
        materialized(instance, DAY_7)
        backfill = active_run(instance, dg.DagsterRunStatus.STARTED, single_run_backfill_tags(DAY_5, DAY_6))

        first = evaluate(instance, tmp_path, None)
        assert requested(first) == {DAY_7: f"late-{DAY_7}-bronze-v3"}, "only the day nobody computes"
        assert first.cursor == "-1", "the commits of the waiting days are read again"

        instance.delete_run(backfill)  # the backfill's run is over
        second = evaluate(instance, tmp_path, first.cursor)
        # v0 and v1 were in the backfill's read: folded. v2 came after it: 10-05 is re-run.
        # 10-07 comes back with the same run key, which Dagster launches once.
        assert requested(second) == {
            DAY_5: f"late-{DAY_5}-bronze-v2",
            DAY_7: f"late-{DAY_7}-bronze-v3",
        }
        assert second.cursor == "3"


@pytest.mark.parametrize(
    "status",
    [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED],
)
def test_a_day_with_a_run_queued_or_running_waits_and_says_why(tmp_path: Path, status: dg.DagsterRunStatus) -> None:
    commit(tmp_path, 0, DAY_6)
    with dg.instance_for_test() as instance:
        materialized(instance, DAY_6)
        run_id = active_run(instance, status, {"dagster/partition": DAY_6}, job_name="daily_batch_job")
        result = evaluate(instance, tmp_path, None)
        assert not result.run_requests and result.cursor == "-1"
        assert f"run {run_id[:8]}" in str(result.skip_reason) and DAY_6 in str(result.skip_reason)


def test_a_day_not_yet_in_silver_while_its_run_computes_it_is_not_dropped(tmp_path: Path) -> None:
    # The run's silver read bronze before this commit but has not recorded its materialization yet:
    # skipping the day as "not in silver" would lose the commit.
    commit(tmp_path, 0, DAY_5)
    commit(tmp_path, 1, DAY_5)
    with dg.instance_for_test() as instance:
        run_id = active_run(instance, dg.DagsterRunStatus.STARTED, {"dagster/partition": DAY_5})
        waiting = evaluate(instance, tmp_path, None)
        assert not waiting.run_requests and waiting.cursor == "-1"

        materialized(instance, DAY_5, bronze_version=0)
        run = instance.get_run_by_id(run_id)
        assert run is not None
        instance.report_run_failed(run)  # over, whatever its rollups did
        after = evaluate(instance, tmp_path, waiting.cursor)
        assert requested(after) == {DAY_5: f"late-{DAY_5}-bronze-v1"}
        assert after.cursor == "1"


def test_runs_of_other_assets_and_finished_runs_hold_nothing(tmp_path: Path) -> None:
    commit(tmp_path, 0, DAY_5)
    with dg.instance_for_test() as instance:
        materialized(instance, DAY_5)
        active_run(instance, dg.DagsterRunStatus.STARTED, {}, job_name="tsdb_repair_job", asset_selection=None)
        active_run(
            instance,
            dg.DagsterRunStatus.STARTED,
            {"dagster/partition": DAY_5},
            asset_selection=frozenset({dg.AssetKey("rollup_1w")}),
        )
        active_run(instance, dg.DagsterRunStatus.SUCCESS, {"dagster/partition": DAY_5})
        result = evaluate(instance, tmp_path, None)
        assert requested(result) == {DAY_5: f"late-{DAY_5}-bronze-v0"}
        assert result.cursor == "0"


def _asset_graph():
    daily = dg.DailyPartitionsDefinition(start_date=DAY_1, timezone="UTC")
    assets = [dg.AssetSpec(name, partitions_def=daily) for name in DAILY]
    return dg.Definitions(assets=assets).resolve_asset_graph()


def add_backfill(instance: dg.DagsterInstance, days: list[str]) -> PartitionBackfill:
    """A requested asset backfill of the daily assets over `days`, before it launched any run."""
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="demo-backfill",
        asset_graph=_asset_graph(),
        partition_names=days,
        asset_selection=[dg.AssetKey(name) for name in DAILY],
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill


def test_days_of_a_requested_backfill_wait_until_it_is_done(tmp_path: Path) -> None:
    commit(tmp_path, 0, DAY_5, DAY_8)
    with dg.instance_for_test() as instance:
        for day in (DAY_5, DAY_8):
            materialized(instance, day)
        backfill = add_backfill(instance, [DAY_5, DAY_6])
        busy = busy_days(instance)
        assert busy.covers(DAY_6) and not busy.covers(DAY_7)

        waiting = evaluate(instance, tmp_path, None)
        assert requested(waiting) == {DAY_8: f"late-{DAY_8}-bronze-v0"}
        assert waiting.cursor == "-1"

        instance.update_backfill(backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
        materialized(instance, DAY_5, bronze_version=0)  # the backfill read the commit
        done = evaluate(instance, tmp_path, waiting.cursor)
        assert requested(done) == {DAY_8: f"late-{DAY_8}-bronze-v0"}
        assert done.cursor == "0"


def test_a_run_of_the_daily_assets_without_partition_tags_holds_every_day(tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        active_run(instance, dg.DagsterRunStatus.QUEUED, {})
        assert busy_days(instance).covers(DAY_5)
        ranged = dg.DagsterInstance.ephemeral()
        active_run(ranged, dg.DagsterRunStatus.QUEUED, single_run_backfill_tags(DAY_5, DAY_7))
        busy = busy_days(ranged)
        assert [busy.covers(day) for day in (DAY_4, DAY_5, DAY_7, DAY_8)] == [
            False,
            True,
            True,
            False,
        ]
