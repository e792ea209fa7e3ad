"""Silver and every rollup level materialized by Dagster from a bronze table, twice: identical
tables, and the history TSDB holding each rollup value once."""

import datetime as dt
import uuid
from pathlib import Path

import dagster as dg

from rtdp_dagster.batch.assets import build_batch_assets
from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.recent_days import partition_keys, recent_monday

from .bronze_rows import Record, ms, write_bronze

MONDAY = recent_monday()
DAY = MONDAY.isoformat()  # a Monday: the ISO week partition has the same key
KEYS = partition_keys(MONDAY)
assets = build_batch_assets(load_settings().batch)


def records(metric: str) -> list[Record]:
    hosts = [{"host": "site01-host0001"}, {"host": "not-in-master-data", "site": "lab"}]
    rows: list[Record] = []
    for i in range(120):  # two hours at one point per minute, per host
        for h, tags in enumerate(hosts):
            ts = ms(f"{DAY}T10:00:00") + i * 60_000
            rows.append(Record(metric, tags, ts, float(i + h), ums_id=1, offset=2 * i + h))
    rows.append(Record(metric, hosts[0], rows[0].ts_ms, 99.0, ums_id=2, op="u", wave=2, offset=1000))  # correction
    rows.append(Record(metric, hosts[0], rows[2].ts_ms, 1.0, ums_id=1, wave=2, offset=1001))  # duplicate
    rows.append(Record(metric, hosts[1], rows[3].ts_ms, None, ums_id=3, op="d", wave=3, offset=1002))  # retraction
    return rows


def materialize_all(resources: dict) -> None:
    for selection, key in (
        ([assets.silver, *assets.rollups[:3]], DAY),
        ([assets.rollups[3]], DAY),
        ([assets.rollups[4]], KEYS["1mo"]),
        ([assets.rollups[5]], KEYS["1y"]),
    ):
        result = dg.materialize(selection, partition_key=key, resources=resources, selection=selection)
        assert result.success


def test_day_to_year_twice_gives_identical_tables_and_no_doubled_history(
    stack: Settings, spark, tmp_path: Path
) -> None:
    from rtdp_dagster.definitions import defs

    metric = f"rtdp.test.batch.{uuid.uuid4().hex[:8]}"
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    write_bronze(spark, records(metric), delta.table_path("bronze"))
    resources = {**dict(defs.resources or {}), "delta": delta}

    materialize_all(resources)
    tables = ("silver", "rollup_1m", "rollup_1h", "rollup_1d", "rollup_1w", "rollup_1mo", "rollup_1y")
    first = {name: spark.read.format("delta").load(delta.table_path(name)).collect() for name in tables}
    materialize_all(resources)
    for name, rows in first.items():
        again = spark.read.format("delta").load(delta.table_path(name)).collect()
        assert sorted(map(str, again)) == sorted(map(str, rows)), f"{name} changed on a re-run"

    silver = first["silver"]
    assert len(silver) == 239  # 240 points, one retracted; the duplicate collapsed
    known = [r for r in silver if r["tags"]["host"] == "site01-host0001"]
    assert {r["tags"]["site"] for r in known} == {"unknown"}  # no master data loaded in this table root
    assert {r["tags"]["site"] for r in silver if r["tags"]["host"] == "not-in-master-data"} == {"lab"}
    assert [r["value"] for r in known if r["ums_ts_"] == ms(f"{DAY}T10:00:00")] == [99.0]
    (year_row,) = [r for r in first["rollup_1y"] if r["tags"]["host"] == "site01-host0001"]
    assert year_row["count"] == 120 and year_row["first"] == 99.0 and year_row["last"] == 119.0
    daily = {r["tags"]["host"]: r for r in first["rollup_1d"]}
    assert daily["not-in-master-data"]["count"] == 119

    history = stack.tsdb.history.url
    force_flush(history)
    buckets = {
        "1d": f"{DAY}T00:00:00",
        "1w": f"{DAY}T00:00:00",
        "1mo": f"{KEYS['1mo']}T00:00:00",
        "1y": f"{KEYS['1y']}-01-01T00:00:00",
    }
    # The daily level is published in month parts.
    parts = {level: KEYS["1mo" if level == "1d" else level] for level in ("1d", "1w", "1mo", "1y")}
    for level, part in parts.items():
        series = export_series(history, metric, {"rollup": level, "agg": "count", "part": part})
        counts = {s["tags"]["host"]: [tuple(p) for p in s["points"]] for s in series}
        start = ms(buckets[level])
        assert counts == {"site01-host0001": [(start, 120)], "not-in-master-data": [(start, 119)]}, (level, counts)
    assert dt.date.fromisoformat(DAY).weekday() == 0
