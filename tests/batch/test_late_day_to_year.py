"""A late point for a day in a closed week of the previous month, end to end on the real stack:
the late-data sensor re-runs the day, the automation of the coarse rollups then requests exactly
that day's week, month and year, and afterwards silver, every rollup table and the history TSDB
equal an independent pandas computation over all the points."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rtdp_dagster.batch.assets import build_batch_assets
from rtdp_dagster.batch.sensors import late_data_sensor
from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.quality import checks as quality
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.batch.nab_reference import reference_rollup
from tests.recent_days import partition_keys, today

from .bronze_rows import Record, bronze_frame, ms

# In the previous month and in a closed ISO week (it ends by the 4th of this month at the latest).
LATE_DAY = today().replace(day=1) - dt.timedelta(days=10)
batch = build_batch_assets(load_settings().batch)
LEVELS = ("1m", "1h", "1d", "1w", "1mo", "1y")
COARSE = {"1w": batch.rollups[3], "1mo": batch.rollups[4], "1y": batch.rollups[5]}
# The day's assets as daily_batch_job runs them, with the blocking checks of rollup_1d that the coarse
# levels wait on (the checks of silver, 1m and 1h are tested in tests/quality; here they would only
# add minutes of Great Expectations runs).
DAY_RUN = [batch.silver, *batch.rollups[:3], quality.rollup_quality_checks[2]]


def _day_records(metric: str, day: dt.date, first_offset: int) -> list[Record]:
    start = ms(f"{day.isoformat()}T08:00:00")
    return [
        Record(
            metric,
            {"host": f"coarse-h{h}"},
            start + i * 60_000,
            float((i * 7 + h) % 90),
            ums_id=1,
            offset=first_offset + 2 * i + h,
        )
        for i in range(60)
        for h in range(2)
    ]


def _append(spark, records: list[Record], path: str) -> None:
    bronze_frame(spark, records).write.format("delta").mode("append").partitionBy("event_date").save(path)


def _enriched(tags: dict[str, str]) -> dict[str, str]:
    # No master data in this table root: site and app are the point's own, else "unknown".
    return {**tags, "site": tags.get("site", "unknown"), "app": tags.get("app", "unknown")}


def _series(metric: str, tags: dict[str, str]) -> str:
    return json.dumps([metric, sorted(tags.items())])


def _reference_silver(records: list[Record]) -> pd.DataFrame:
    """One row per point: the highest ums_id_ wins, a retraction removes the point."""
    latest: dict[tuple, Record] = {}
    for record in records:
        key = (record.metric, tuple(sorted(record.tags.items())), record.ts_ms)
        if key not in latest or record.ums_id > latest[key].ums_id:
            latest[key] = record
    rows = [
        {
            "series_key": _series(r.metric, _enriched(r.tags)),
            "metric": r.metric,
            "tags": _enriched(r.tags),
            "ts_ms": r.ts_ms,
            "value": r.value,
        }
        for r in latest.values()
        if r.op != "d"
    ]
    return pd.DataFrame(rows)


def _part(level: str, bucket_ms: int) -> str:
    """The history part of a bucket: the day for 1m and 1h, the month for 1d, else the partition."""
    day = dt.datetime.fromtimestamp(bucket_ms / 1000, dt.UTC).date()
    return partition_keys(day)[level if level in ("1w", "1mo", "1y") else "1mo" if level == "1d" else "1d"]


def _reference_history(silver: pd.DataFrame) -> set[tuple]:
    """Every history point: (tags with rollup, agg and part, timestamp, value)."""
    points = set()
    for level in LEVELS:
        for (series, bucket), (n, total, low, high, _, first, _, last) in reference_rollup(silver, level).items():
            _, tags = json.loads(series)
            aggregates = {"count": n, "sum": float(total), "min": low, "max": high, "first": first, "last": last}
            for agg, value in aggregates.items():
                labels = {**dict(tags), "rollup": level, "agg": agg, "part": _part(level, bucket)}
                points.add((tuple(sorted(labels.items())), bucket, float(value)))
    return points


def _table_rollup(spark, delta: DeltaTablesResource, level: str, metric: str) -> dict[tuple[str, int], tuple]:
    rows = spark.read.format("delta").load(delta.table_path(f"rollup_{level}")).where(f"metric = '{metric}'")
    return {
        (_series(r["metric"], dict(r["tags"])), r["bucket_start"]): (
            r["count"],
            r["sum"],
            r["min"],
            r["max"],
            r["first_ts"],
            r["first"],
            r["last_ts"],
            r["last"],
        )
        for r in rows.collect()
    }


def _assert_equal_to_pandas(spark, delta: DeltaTablesResource, history_url: str, records: list[Record]) -> None:
    metric = records[0].metric
    expected = _reference_silver(records)
    silver = spark.read.format("delta").load(delta.table_path("silver")).where(f"metric = '{metric}'").collect()
    assert sorted((_series(r["metric"], dict(r["tags"])), r["ums_ts_"], r["value"]) for r in silver) == sorted(
        zip(expected["series_key"], expected["ts_ms"], expected["value"], strict=True)
    )
    for level in LEVELS:
        assert _table_rollup(spark, delta, level, metric) == reference_rollup(expected, level), level
    force_flush(history_url)
    history = {
        (tuple(sorted(series["tags"].items())), ts, value)
        for series in export_series(history_url, metric)
        for ts, value in series["points"]
    }
    assert history == _reference_history(expected)


class Automation:
    """The coarse rollups' automation ticks on one instance; requested partitions run as Dagster would."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict) -> None:
        from rtdp_dagster.definitions import defs

        self.defs, self.instance, self.resources, self.cursor = defs, instance, resources, None

    def tick(self) -> dict[str, set[str]]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.cursor,
            asset_selection=dg.AssetSelection.assets(*COARSE.values()),
        )
        self.cursor = result.cursor
        return {
            level: {str(key) for key in result.get_requested_partitions(asset.key)} for level, asset in COARSE.items()
        }

    def run(self, requested: dict[str, set[str]]) -> None:
        for level, keys in requested.items():
            for key in sorted(keys):
                result = dg.materialize(
                    [COARSE[level]], partition_key=key, resources=self.resources, instance=self.instance
                )
                assert result.success, (level, key)


def _run_day(day: str, resources: dict, instance: dg.DagsterInstance, tags: dict[str, str] | None = None) -> None:
    result = dg.materialize(DAY_RUN, partition_key=day, resources=resources, instance=instance, tags=tags)
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert result.success and not failed, (day, failed)


# Eight to nine minutes on two busy shared cores (Spark steps of 15-30 s each): above the default 600 s.
@pytest.mark.timeout(900)
def test_a_late_point_in_a_closed_week_of_last_month_reaches_every_level_and_the_history(
    stack: Settings, spark, tmp_path: Path
) -> None:
    from rtdp_dagster.definitions import defs

    metric = f"rtdp.test.coarse.{uuid.uuid4().hex[:8]}"
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    resources = {**dict(defs.resources or {}), "delta": delta}
    bronze = delta.table_path("bronze")
    records = _day_records(metric, LATE_DAY, 0)
    _append(spark, records, bronze)

    with dg.instance_for_test() as instance:
        sensor_context = dg.build_sensor_context(
            instance=instance, resources={"delta": delta, "platform": PlatformConfigResource()}
        )
        automation = Automation(instance, resources)
        assert automation.tick() == {"1w": set(), "1mo": set(), "1y": set()}
        nothing_late = late_data_sensor(sensor_context)
        assert isinstance(nothing_late, dg.SensorResult) and not nothing_late.run_requests
        sensor_context.update_cursor(nothing_late.cursor)

        # The day as its nightly run made it; the automation then builds its week, month and year.
        _run_day(LATE_DAY.isoformat(), resources, instance)
        late = partition_keys(LATE_DAY)
        first = automation.tick()
        assert first == {"1w": {late["1w"]}, "1mo": {late["1mo"]}, "1y": {late["1y"]}}
        automation.run(first)

        # Late: a new point after the last one of a host, and a correction of an earlier one.
        last = max(r.ts_ms for r in records if r.tags["host"] == "coarse-h0")
        late_points = [
            Record(metric, {"host": "coarse-h0"}, last + 60_000, 42.0, ums_id=1, wave=3, offset=5000),
            Record(metric, {"host": "coarse-h1"}, records[5].ts_ms, 77.0, ums_id=2, op="u", wave=3, offset=5001),
        ]
        _append(spark, late_points, bronze)
        records += late_points
        sensed = late_data_sensor(sensor_context)
        assert isinstance(sensed, dg.SensorResult)
        assert [request.partition_key for request in sensed.run_requests or []] == [LATE_DAY.isoformat()]
        (request,) = sensed.run_requests or []
        _run_day(LATE_DAY.isoformat(), resources, instance, tags=dict(request.tags))

        again = automation.tick()
        assert again == first, "the late day's week, month and year again"
        automation.run(again)
        assert automation.tick() == {"1w": set(), "1mo": set(), "1y": set()}
        _assert_equal_to_pandas(spark, delta, stack.tsdb.history.url, records)
