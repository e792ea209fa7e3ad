"""The late-data sensor against a real bronze Delta table: requested days and the new cursor."""

from pathlib import Path

import dagster as dg

from rtdp_dagster.batch.sensors import late_data_sensor
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.resources.platform import PlatformConfigResource

from .bronze_rows import Record, bronze_frame, ms

METRIC = "sys.cpu.util"


def append(spark, path: str, day: str, count: int = 3) -> None:
    rows = [Record(METRIC, {"host": "h1"}, ms(f"{day}T12:00:00") + i * 1000, float(i), ums_id=1) for i in range(count)]
    bronze_frame(spark, rows).write.format("delta").mode("append").partitionBy("event_date").save(path)


def evaluate(instance: dg.DagsterInstance, root: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"delta": DeltaTablesResource(root=str(root)), "platform": PlatformConfigResource()},
    )
    result = late_data_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_late_rows_for_closed_materialized_days_request_exactly_those_days(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "bronze")
    append(spark, path, "2026-10-05")  # version 0
    append(spark, path, "2026-10-06")  # version 1
    with dg.instance_for_test() as instance:
        for day in ("2026-10-05", "2026-10-06"):
            instance.report_runless_asset_event(dg.AssetMaterialization("silver", partition=day))

        first = evaluate(instance, tmp_path, None)
        assert sorted(str(r.partition_key) for r in first.run_requests or []) == ["2026-10-05", "2026-10-06"]
        assert first.cursor == "1"

        # Late rows for 10-05 (already in silver) and rows for 10-07 (never materialized: not late).
        append(spark, path, "2026-10-05")  # version 2
        append(spark, path, "2026-10-07")  # version 3
        second = evaluate(instance, tmp_path, first.cursor)
        requests = second.run_requests or []
        assert [r.partition_key for r in requests] == ["2026-10-05"]
        assert requests[0].run_key == "late-2026-10-05-bronze-v2"
        assert second.cursor == "3"

        nothing = evaluate(instance, tmp_path, second.cursor)
        assert not nothing.run_requests and "no new bronze commits" in str(nothing.skip_reason)


def test_more_late_days_than_the_budget_wait_for_the_next_tick(spark, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RTDP_BATCH__LATE_DAYS_PER_TICK", "2")
    path = str(tmp_path / "bronze")
    days = ["2026-10-05", "2026-10-06", "2026-10-07"]
    for day in days:
        append(spark, path, day)  # versions 0, 1, 2
    with dg.instance_for_test() as instance:
        for day in days:
            instance.report_runless_asset_event(dg.AssetMaterialization("silver", partition=day))
        first = evaluate(instance, tmp_path, None)
        assert [r.partition_key for r in first.run_requests or []] == days[:2]
        assert first.cursor == "1", "the third commit was not requested, so the cursor stops before it"
        second = evaluate(instance, tmp_path, first.cursor)
        assert [r.partition_key for r in second.run_requests or []] == days[2:]
        assert second.cursor == "2"
