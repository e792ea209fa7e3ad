"""The demo runs bronze's checks on every day it backfills (their schedule would not come during a demo)."""

import dagster as dg

from rtdp_dagster.demo.run import bronze_check_runs


def test_each_day_of_the_range_gets_a_run_config_that_the_job_accepts() -> None:
    from rtdp_dagster.definitions import defs

    runs = bronze_check_runs(("2031-02-27", "2031-03-01"))

    assert list(runs) == ["2031-02-27", "2031-02-28", "2031-03-01"]
    job = defs.resolve_job_def("bronze_quality_job")
    for day, run_config in runs.items():
        assert run_config["ops"]["bronze_quality"]["config"]["day"] == day
        assert dg.validate_run_config(job, run_config)["ops"]["bronze_quality"]["config"] == {"day": day}


def test_a_range_of_one_day_is_one_run() -> None:
    assert list(bronze_check_runs(("2031-03-01", "2031-03-01"))) == ["2031-03-01"]


def test_the_summary_names_the_checks_that_neither_passed_nor_failed() -> None:
    from rtdp_dagster.demo.run import judged_checks

    checks = [
        {"asset": "silver", "check": "schema", "status": "SUCCEEDED"},
        {"asset": "silver", "check": "completeness", "status": "FAILED"},
        {"asset": "bronze", "check": "schema", "status": "NOT_RUN"},
        {"asset": "bronze", "check": "stream_heartbeat_fresh", "status": "IN_PROGRESS"},
        {"asset": "rollup_1d", "check": "valid", "status": "SUCCEEDED"},
    ]

    counts, failed, unsettled = judged_checks(checks)

    assert counts == {"SUCCEEDED": 2, "FAILED": 1, "NOT_RUN": 1, "IN_PROGRESS": 1}
    assert failed == ["silver:completeness"]
    assert unsettled == ["bronze:schema (NOT_RUN)", "bronze:stream_heartbeat_fresh (IN_PROGRESS)"]
