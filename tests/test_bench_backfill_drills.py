"""The backfill drills' bookkeeping without services: the history span, the rollups and history points
computed in pandas, their comparison with the TSDB, the backfill's outcome, the GraphQL it sends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from graphql import parse, validate

from bench import backfill_drills as bd
from bench.drills import DRILLS, Cluster, cluster_env
from rtdp_dagster.demo.dagster_api import BackfillProgress


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def test_history_span_reaches_before_the_first_days_midnight() -> None:
    now = dt.datetime(2026, 12, 6, 10, 30, tzinfo=dt.UTC)
    assert bd.history_span_s(now, 2, margin_s=300) == (2 * 86_400 + 10.5 * 3600) + 300


def test_rows_inserted_reads_one_type_of_the_counter() -> None:
    text = (
        "# HELP vm_rows_inserted_total\n"
        'vm_rows_inserted_total{type="opentsdb"} 7\n'
        'vm_rows_inserted_total{type="opentsdbhttp"} 1.2345e+06\n'
    )
    assert bd.rows_inserted(text, "opentsdbhttp") == 1_234_500
    assert bd.rows_inserted(text, "promremotewrite") == 0


def test_calendar_buckets_and_parts_follow_the_partition_keys() -> None:
    ts = pd.Series([_ms("2026-12-06T23:59:00"), _ms("2026-11-30T00:00:00"), _ms("2026-12-07T00:00:00")])
    weeks = [_ms("2026-11-30T00:00:00"), _ms("2026-11-30T00:00:00"), _ms("2026-12-07T00:00:00")]
    assert bd.calendar_bucket_start(ts, "1w").tolist() == weeks
    months = [_ms("2026-12-01T00:00:00"), _ms("2026-11-01T00:00:00"), _ms("2026-12-01T00:00:00")]
    assert bd.calendar_bucket_start(ts, "1mo").tolist() == months
    assert bd.calendar_bucket_start(ts, "1y").tolist() == [_ms("2026-01-01T00:00:00")] * 3
    starts = pd.Series([_ms("2026-12-05T13:00:00")])
    assert bd.part_of("1m", starts).tolist() == ["2026-12-05"]
    assert bd.part_of("1d", starts).tolist() == ["2026-12-01"]  # days in month parts
    assert bd.part_of("1w", pd.Series([_ms("2026-11-30T00:00:00")])).tolist() == ["2026-11-30"]
    assert bd.part_of("1mo", pd.Series([_ms("2026-12-01T00:00:00")])).tolist() == ["2026-12-01"]
    assert bd.part_of("1y", pd.Series([_ms("2026-01-01T00:00:00")])).tolist() == ["2026"]


POINTS = pd.DataFrame(
    {
        "metric": ["m"] * 4,
        "host": ["h1", "h1", "h1", "h2"],
        # Out of time order on purpose: first and last are by time.
        "ts": [_ms("2026-12-05T00:01:30"), _ms("2026-12-04T10:00:00"), _ms("2026-12-05T00:01:10"), 0],
        "value": [3.0, 1.0, 2.0, 9.0],
    }
)


def test_truth_rollup_keeps_every_aggregate_first_and_last_by_time() -> None:
    minute = bd.truth_rollup(POINTS.query("host == 'h1'"), "1m").to_dict("records")
    assert minute[-1] == {
        "metric": "m",
        "host": "h1",
        "bucket_start": _ms("2026-12-05T00:01:00"),
        "count": 2,
        "sum": 5.0,
        "min": 2.0,
        "max": 3.0,
        "first": 2.0,
        "last": 3.0,
    }
    (week,) = bd.truth_rollup(POINTS.query("host == 'h1'"), "1w").to_dict("records")
    assert week["bucket_start"] == _ms("2026-11-30T00:00:00") and (week["first"], week["last"]) == (1.0, 3.0)


def test_history_comparison_finds_missing_doubled_extra_and_different_points() -> None:
    expected = bd.expected_history(POINTS, ["1h", "1d"])
    # 3 hour buckets and 3 day buckets (h1 on two days, h2 on one), 6 aggregates each.
    assert len(expected) == 6 * 6
    assert set(expected[expected["rollup"] == "1d"]["part"]) == {"2026-12-01", "1970-01-01"}
    assert bd.compare_history(expected, expected.copy()) == {
        "expected": 36,
        "samples": 36,
        "missing": 0,
        "extra": 0,
        "doubled": 0,
        "different": 0,
    }
    actual = pd.concat([expected.iloc[1:], expected.iloc[[5, 5]]], ignore_index=True)  # one lost, one stored 3x
    actual.loc[0, "value"] = actual.loc[0, "value"] + 1
    extra = expected.iloc[[2]].assign(part="2026-11-01")
    assert bd.compare_history(expected, pd.concat([actual, extra], ignore_index=True)) == {
        "expected": 36,
        "samples": 38,
        "missing": 1,
        "extra": 1,
        "doubled": 2,
        "different": 1,
    }
    empty = pd.DataFrame(columns=pd.Index([*bd.HISTORY_KEY, "value"]))
    assert bd.compare_history(expected, empty)["missing"] == 36


def test_samples_stored_again_are_counted_apart_from_what_reads_get() -> None:
    expected = bd.expected_history(POINTS, ["1h"])
    assert bd.stored_again(expected) == 0
    assert bd.stored_again(pd.concat([expected, expected.iloc[:4]], ignore_index=True)) == 4


def test_a_backfill_is_complete_only_with_every_partition_materialized() -> None:
    assert bd.backfill_complete(BackfillProgress("COMPLETED_SUCCESS", 11, 11, 0, 0))
    assert not bd.backfill_complete(BackfillProgress("COMPLETED_FAILED", 11, 3, 8, 0))
    assert not bd.backfill_complete(BackfillProgress("COMPLETED", 11, 10, 0, 0))
    assert not bd.backfill_complete(BackfillProgress("REQUESTED", 11, 11, 0, 0))
    assert bd.days_of_range("2026-11-30", "2026-12-01") == [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]


def test_backfill_titles_are_valid_dagster_titles() -> None:
    title = bd.backfill_title('x%*"' * 120, 2)
    assert len(title) == 100 and not set('%*"') & set(title)
    assert bd.backfill_title("backfill_daemon_kill", 2) == "drill backfill_daemon_kill: launch 2"


def test_run_summary_keeps_status_assets_and_steps() -> None:
    run = {
        "runId": "0123456789abcdef",
        "status": "FAILURE",
        "startTime": 100.0,
        "endTime": 160.5,
        "assetSelection": [{"path": ["rollup_1m"]}, {"path": ["silver"]}],
        "stepStats": [{"stepKey": "silver", "status": "SUCCESS"}, {"stepKey": "rollup_1m", "status": "FAILURE"}],
    }
    assert bd.run_summary(run) == {
        "run_id": "01234567",
        "status": "FAILURE",
        "assets": ["rollup_1m", "silver"],
        "seconds": 60.5,
        "steps": {"silver": "SUCCESS", "rollup_1m": "FAILURE"},
    }


@pytest.mark.parametrize(
    "query", [bd._BACKFILL_RUNS, bd._DAEMONS, bd._TERMINATE, bd._CANCEL_BACKFILL], ids=lambda q: q.split()[0]
)
def test_graphql_queries_match_the_installed_dagster_schema(query: str) -> None:
    from dagster_graphql.schema import create_schema

    assert validate(create_schema().graphql_schema, parse(query)) == []


def test_backfill_drills_are_registered_with_their_runner(tmp_path: Path) -> None:
    for name in ("backfill_worker_kill", "backfill_history_tsdb_kill", "backfill_daemon_kill"):
        assert DRILLS[name].runner is bd.run_backfill_drill
    assert DRILLS["stream_kill"].runner is None
    cluster = Cluster(tmp_path, cluster_env(tmp_path, iter(range(31_000, 31_040)), "pw"))
    platform = bd.BackfillDrillPlatform(cluster, "backfill_daemon_kill", 504, tmp_path / "drill")
    config = platform.config(collecting=True)
    load, history = config["collection"]["sources"]
    assert load["name"] == platform.source_name and history["name"] == platform.history_source_name
    assert history["waves"]["history_s"] > bd.HISTORY_DAYS * 86_400
    assert all(metric["name"].startswith(platform.history_metric_prefix) for metric in history["metrics"])
    assert config["stack"]["dagster"]["enabled"] and config["collection"]["wave2_cron"] == bd.NEVER_CRON


def test_benchmark_records_of_a_backfill_drill_with_and_without_reconciliation() -> None:
    from bench.drills import DrillResult
    from bench.scenarios.drills import records_of

    history = {"after_backfill": {"missing": 3, "doubled": 0}, "after_repair": {"missing": 0, "doubled": 0}}
    result = DrillResult("backfill_x", "what", 504.0, "now", [], {}, {"history_tsdb": history}, [])
    assert [r.figure for r in records_of(result)] == [
        "backfill_x: history TSDB points missing after backfill",
        "backfill_x: history TSDB points doubled after backfill",
        "backfill_x: history TSDB points missing after repair",
        "backfill_x: history TSDB points doubled after repair",
    ]
    result.figures["backfilled"] = {"silver_points": 10, "produced": 10, "lost": 0, "duplicated_in_silver": 0}
    (silver,) = [r for r in records_of(result) if "in silver" in r.figure]
    assert silver.value == silver.baseline == 10


def test_dagster_failure_lines_are_the_failures_and_the_exception() -> None:
    lines = [
        "2026-12-06 11:06:50 +0000 - dagster - ERROR - __ASSET_JOB - a1 - rollup_1m - STEP_FAILURE - Execution failed.",
        "    raise TsdbWriteError(f'{what}: failed')",
        "rtdp_dagster.tsdb.put.TsdbWriteError: HTTP put to http://127.0.0.1:1: failed after 4 attempts",
        "2026-12-06 11:06:51 +0000 - dagster - INFO - a sensor skipped",
    ]
    assert [bool(bd.DAGSTER_FAILURES.search(line)) for line in lines] == [True, False, True, False]
