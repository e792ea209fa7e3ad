"""A 7-day backfill of silver and every rollup, run twice — in process, then with the documented
`dagster asset materialize --partition-range` command — gives identical Delta tables and identical
history-TSDB series; rollup tables keep file statistics for series_key and bucket_start only."""

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest

from rtdp_dagster.batch.assets import build_batch_assets
from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.recent_days import partition_keys, recent_monday

from .bronze_rows import Record, ms, write_bronze

pytestmark = pytest.mark.long_running

MONDAY = recent_monday(week_in_one_month=True)
FIRST, LAST = MONDAY.isoformat(), (MONDAY + dt.timedelta(days=6)).isoformat()  # one ISO week, in one month
KEYS = partition_keys(MONDAY)
assets = build_batch_assets(load_settings().batch)
DAILY = ["silver", "rollup_1m", "rollup_1h", "rollup_1d"]
TABLES = [*DAILY, "rollup_1w", "rollup_1mo", "rollup_1y"]


def week_of_records(metric: str) -> list[Record]:
    rows: list[Record] = []
    for day in range(7):
        start = ms(f"{FIRST}T00:00:00") + day * 86_400_000
        for step in range(48):  # every 30 minutes
            for h in range(2):
                rows.append(
                    Record(
                        metric,
                        {"host": f"h{h}"},
                        start + step * 1_800_000,
                        float(day * 100 + step + h),
                        ums_id=1,
                        offset=len(rows),
                    )
                )
    rows.append(Record(metric, {"host": "h0"}, rows[10].ts_ms, -5.0, ums_id=2, op="u", offset=len(rows)))
    rows.append(Record(metric, {"host": "h1"}, rows[301].ts_ms, None, ums_id=2, op="d", offset=len(rows) + 1))
    return rows


def coarse_levels(resources: dict) -> None:
    for asset, key in ((assets.rollups[3], FIRST), (assets.rollups[4], KEYS["1mo"]), (assets.rollups[5], KEYS["1y"])):
        assert dg.materialize([asset], partition_key=key, resources=resources).success


def snapshot(spark, delta: DeltaTablesResource, history_url: str, metric: str) -> tuple[dict, list]:
    read = spark.read.format("delta")
    tables = {name: sorted(map(str, read.load(delta.table_path(name)).collect())) for name in TABLES}
    force_flush(history_url)
    series = sorted((sorted(s["tags"].items()), s["points"]) for s in export_series(history_url, metric))
    return tables, series


def test_a_seven_day_backfill_twice_gives_identical_tables_and_history(
    stack: Settings, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtdp_dagster.definitions import defs

    # History publishing is the same code for every level: a daily level (seven partitions in one
    # run) and a coarse one show it, at a fraction of the Spark jobs.
    monkeypatch.setenv("RTDP_BATCH__HISTORY_LEVELS", '["1h", "1w"]')
    metric = f"rtdp.test.backfill.{uuid.uuid4().hex[:8]}"
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    write_bronze(spark, week_of_records(metric), delta.table_path("bronze"))
    resources = {**dict(defs.resources or {}), "delta": delta}

    # One run for the whole range (BackfillPolicy.single_run), as a backfill from the UI launches it.
    selection = [assets.silver, *assets.rollups[:3]]
    range_tags = {"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST}
    assert dg.materialize(selection, resources=resources, tags=range_tags).success
    coarse_levels(resources)
    first_tables, first_history = snapshot(spark, delta, stack.tsdb.history.url, metric)
    assert len(first_tables["silver"]) == 7 * 96 - 1  # one point retracted
    assert len(first_tables["rollup_1d"]) == 14 and len(first_tables["rollup_1w"]) == 2
    assert len(first_history) == 2 * 6 * (7 + 1), "2 hosts x 6 aggregates x (7 days of 1h, 1 week)"

    # The same backfill from the command line (the README's command), in its own Dagster instance.
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "rtdp_dagster.definitions",
        "--select",
        ",".join(DAILY),
        "--partition-range",
        f"{FIRST}...{LAST}",
    ]
    env = {**os.environ, "RTDP_DELTA__ROOT": delta.root, "DAGSTER_HOME": str(tmp_path / "dagster")}
    (tmp_path / "dagster").mkdir()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    coarse_levels(resources)
    second_tables, second_history = snapshot(spark, delta, stack.tsdb.history.url, metric)
    for name in TABLES:
        assert second_tables[name] == first_tables[name], f"{name} differs after the second backfill"
    assert second_history == first_history

    for name in ("rollup_1d", "rollup_1w"):
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{delta.table_path(name)}`").first()
        assert detail is not None
        assert detail["properties"].get("delta.dataSkippingStatsColumns") == "series_key,bucket_start"
    assert dt.date.fromisoformat(FIRST).weekday() == 0
