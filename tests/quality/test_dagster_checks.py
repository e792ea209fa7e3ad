"""The checks in Dagster: a blocking failure on silver keeps rollup_1m from running in the same run,
the failure is published as rtdp.dq.* metrics with a Data Docs link, and after the data is fixed the
same run goes through. Freshness: a day of silver that is not there by its deadline fails its check."""

import datetime as dt
import time
import uuid
from pathlib import Path

import dagster as dg

from rtdp_dagster.batch.assets import build_batch_assets
from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.quality import checks as quality
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.batch.bronze_rows import Record, ms, write_bronze
from tests.recent_days import today

batch = build_batch_assets(load_settings().batch)
# A closed day past the realtime retention (as the batch layer usually sees it), never overtaken by time.
DAY = (today() - dt.timedelta(days=30)).isoformat()


def _records(host: str, bad: dict[int, float]) -> list[Record]:
    start = ms(f"{DAY}T08:00:00")
    return [
        Record("sys.cpu.util", {"host": host}, start + i * 60_000, bad.get(i, float(i % 90)), ums_id=1, offset=i)
        for i in range(60)
    ]


def _run(resources: dict) -> dg.ExecuteInProcessResult:
    selection = [batch.silver, batch.rollups[0], quality.silver_quality, quality.rollup_quality_checks[0]]
    return dg.materialize(selection, partition_key=DAY, resources=resources, raise_on_error=False)


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events() if event.asset_key}


def _statuses(settings: Settings, check: str, count: int, since_ms: int) -> list[float]:
    """The check's rtdp.dq.check_status values since since_ms in time order, once there are count of them.

    The realtime TSDB is the session's: other tests (the demo) publish this series too, earlier.
    """
    found: list = []

    def written() -> bool:
        force_flush(settings.tsdb.realtime.url)
        tags = {"asset": "silver", "check": check}
        found[:] = export_series(settings.tsdb.realtime.url, "rtdp.dq.check_status", tags, start_ms=since_ms)
        return len(found) == 1 and len(found[0]["points"]) >= count

    # A series written for the first time can take a moment to become searchable.
    assert wait_until(written, timeout_s=30, interval_s=1), found
    assert found[0]["tags"]["severity"] == "ERROR"
    return [value for _, value in sorted(found[0]["points"])]


def test_a_blocking_silver_failure_stops_the_rollup_until_the_data_is_fixed(
    stack: Settings, spark, tmp_path: Path
) -> None:
    from rtdp_dagster.definitions import defs

    host = f"blocking-{uuid.uuid4().hex[:6]}"
    started_ms = (int(time.time()) - 1) * 1000  # whole seconds: the TSDB may store them so
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    resources = {**dict(defs.resources or {}), "delta": delta}
    write_bronze(spark, _records(host, {7: 150.0, 30: 250.0}), delta.table_path("bronze"))

    failed = _run(resources)
    assert not failed.success
    materialized = _materialized(failed)
    assert materialized == {"silver"}, "rollup_1m must not run after a blocking failure"
    assert not Path(delta.table_path("rollup_1m")).exists()
    evaluations = {e.check_name: e for e in failed.get_asset_check_evaluations()}
    assert {name for name, e in evaluations.items() if not e.passed} == {"value_range"}
    value_range = evaluations["value_range"]
    assert value_range.metadata["failing_rows"].value == 2
    assert value_range.metadata["days"].value == DAY
    # Where the check's time went: waiting for GX's import (started with the run), GX's context, ...
    steps = ("gx_import_wait", "gx_start", "schema_suite", "profile", "suites", "publish")
    assert all(isinstance(value_range.metadata[f"{step}_s"].value, float) for step in steps), value_range.metadata
    assert Path(str(value_range.metadata["data_docs"].value)).is_file()
    sample = str(value_range.metadata["failing_sample"].value)
    assert f"sys.cpu.util\\|app=unknown,host={host},site=unknown | percent | 2 | {DAY}T08:07:00Z | 150.0" in sample
    assert _statuses(stack, "value_range", 1, started_ms) == [0.0]

    # The operator corrects the source, the day is re-read into bronze, and the day runs again.
    write_bronze(spark, _records(host, {}), str(tmp_path / "fixed"))
    spark.read.format("delta").load(str(tmp_path / "fixed")).write.format("delta").mode("overwrite").save(
        delta.table_path("bronze")
    )
    fixed = _run(resources)
    assert fixed.success
    assert _materialized(fixed) == {"silver", "rollup_1m"}
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in fixed.get_asset_check_evaluations()}
    assert ("rollup_1m", "valid") in evaluations and all(e.passed for e in evaluations.values())
    assert spark.read.format("delta").load(delta.table_path("rollup_1m")).count() == 60
    assert _statuses(stack, "value_range", 2, started_ms) == [0.0, 1.0]


def test_a_day_of_silver_missing_after_its_deadline_fails_its_freshness_check() -> None:
    from rtdp_dagster.definitions import defs, settings
    from rtdp_dagster.quality.freshness import freshness_checks

    freshness = freshness_checks(settings.quality.freshness)

    (silver_check,) = [c for c in freshness if dg.AssetKey("silver") in {k.asset_key for k in c.check_keys}]
    instance = dg.DagsterInstance.ephemeral()

    def evaluate() -> dg.AssetCheckEvaluation:
        result = dg.materialize(
            [batch.silver, silver_check],
            selection=dg.AssetSelection.checks(silver_check),
            instance=instance,
            resources=dict(defs.resources or {}),
        )
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    late = evaluate()
    assert not late.passed and late.severity == dg.AssetCheckSeverity.ERROR
    assert "dagster/latest_cron_tick_timestamp" in late.metadata and "expect partition" in str(late.description)
    # Whichever deadline passed last (01:30 UTC today or yesterday), its day is now materialized.
    today = dt.datetime.now(dt.UTC).date()
    for days_back in (1, 2):
        partition = (today - dt.timedelta(days=days_back)).isoformat()
        instance.report_runless_asset_event(dg.AssetMaterialization("silver", partition=partition))
    assert evaluate().passed
    graph = defs.resolve_asset_graph()
    deadlines = {
        name: getattr(graph.get(dg.AssetKey(name)).freshness_policy, "deadline_cron", None)
        for name in ("silver", "rollup_1d", "rollup_1y", "collection_log", "bronze")
    }
    assert deadlines == {
        "silver": "30 1 * * *",
        "rollup_1d": "0 2 * * *",
        "rollup_1y": "0 3 * * *",
        "collection_log": None,
        "bronze": None,
    }
    assert graph.get(dg.AssetKey("collection_log")).freshness_policy is not None
