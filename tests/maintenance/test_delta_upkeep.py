"""Delta upkeep on small tables: retention drops exactly the old partitions (or buckets), compaction
leaves young partitions alone and is invisible to the late-data sensor, VACUUM keeps a week, and the
job stands aside while a batch run writes the tables."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from pyspark.sql import functions as F

from rtdp_dagster.batch.delta_log import days_added_by_version
from rtdp_dagster.batch.rollups import rollup_points, rollup_rollups
from rtdp_dagster.batch.silver import series_key_column
from rtdp_dagster.config import Settings
from rtdp_dagster.maintenance.delta_upkeep import table_files, vacuum
from rtdp_dagster.maintenance.jobs import delta_maintenance_job
from rtdp_dagster.resources import DeltaTablesResource
from rtdp_dagster.spark.session import delta_version
from tests.batch.bronze_rows import Record, bronze_frame, ms

TODAY = dt.datetime.now(dt.UTC).date()
OLD, MID = TODAY - dt.timedelta(days=40), TODAY - dt.timedelta(days=10)


def day_records(day: dt.date, offset: int) -> list[Record]:
    return [
        Record(
            "sys.cpu.util",
            {"host": f"h{i % 2}"},
            ms(f"{day}T01:00:00") + i * 1000,
            float(i),
            ums_id=1,
            offset=offset + i,
        )
        for i in range(4)
    ]


def partition_files(spark, path: str, column: str) -> dict[str, int]:
    rows = spark.read.format("delta").load(path).select(column, "_metadata.file_path").distinct().collect()
    files: dict[str, int] = {}
    for row in rows:
        files[str(row[column])] = files.get(str(row[column]), 0) + 1
    return files


def sorted_rows(spark, path: str) -> list[str]:
    return sorted(map(str, spark.read.format("delta").load(path).collect()))


@pytest.fixture
def tables(spark, tmp_path: Path) -> DeltaTablesResource:
    """Bronze with three appends to each of three days, and a monthly rollup from 2023 to this month."""
    delta = DeltaTablesResource(root=str(tmp_path / "delta"))
    for append in range(3):
        records = [r for day in (OLD, MID, TODAY) for r in day_records(day, 100 * append)]
        bronze_frame(spark, records).coalesce(1).write.format("delta").mode("append").partitionBy("event_date").save(
            delta.table_path("bronze")
        )
    points = [Record("m", {"host": "h"}, ms(f"{day}T00:00:00"), 1.0, ums_id=1) for day in ("2023-05-02", f"{TODAY}")]
    silver = bronze_frame(spark, points).withColumn("series_key", series_key_column(F.col("metric"), F.col("tags")))
    monthly = rollup_rollups(rollup_points(silver, "1d"), "1mo")
    monthly.write.format("delta").partitionBy("bucket_year").save(delta.table_path("rollup_1mo"))
    return delta


def run_upkeep(resources: dict, instance: dg.DagsterInstance | None = None) -> dict:
    result = delta_maintenance_job.execute_in_process(resources=resources, instance=instance)
    assert result.success
    return result.output_for_node("maintain_delta_tables")


def test_retention_compaction_and_vacuum(
    stack: Settings, spark, tables: DeltaTablesResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rtdp_dagster.definitions import defs

    monkeypatch.setenv("RTDP_MAINTENANCE__BRONZE_RETENTION_DAYS", "30")
    monkeypatch.setenv("RTDP_BATCH__RETENTION_DAYS", "365")
    bronze = tables.table_path("bronze")
    before = spark.read.format("delta").load(bronze).collect()
    assert partition_files(spark, bronze, "event_date") == {str(OLD): 3, str(MID): 3, str(TODAY): 3}
    version = delta_version(spark, bronze)

    figures = {t["table"]: t for t in run_upkeep({**dict(defs.resources or {}), "delta": tables})["tables"]}

    assert figures["bronze"]["rows_deleted"] == 12
    assert partition_files(spark, bronze, "event_date") == {str(MID): 1, str(TODAY): 3}, "young days untouched"
    assert figures["bronze"]["files_before"] == 9 and figures["bronze"]["files_after"] == 4
    assert figures["bronze"]["files_vacuumed"] == 0, "removed files are kept for the VACUUM retention"
    assert sorted_rows(spark, bronze) == sorted(str(r) for r in before if r["event_date"] != OLD)
    # The compaction commit adds files, but no rows arrived: the late-data sensor sees nothing.
    assert all(not days for days in days_added_by_version(bronze, version, 10).values())

    assert figures["rollup_1mo"]["rows_deleted"] == 1
    months = spark.read.format("delta").load(tables.table_path("rollup_1mo")).collect()
    assert [r["bucket_year"] for r in months] == [TODAY.year]
    assert figures["silver"]["absent"] is True

    # With Delta's own safety check off (tests only), VACUUM deletes what retention and compaction removed.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        assert vacuum(spark, bronze, 0) == 6
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert table_files(spark, bronze)[0] == 4
    assert sorted_rows(spark, bronze) == sorted(str(r) for r in before if r["event_date"] != OLD)


def test_upkeep_stands_aside_while_a_batch_run_is_in_progress(stack: Settings, spark, tables) -> None:
    from rtdp_dagster.definitions import defs

    bronze = tables.table_path("bronze")
    version = delta_version(spark, bronze)
    with dg.instance_for_test() as instance:
        instance.create_run_for_job(defs.get_job_def("daily_batch_job"), status=dg.DagsterRunStatus.STARTED)
        assert run_upkeep({**dict(defs.resources or {}), "delta": tables}, instance) == {"skipped": True}
    assert delta_version(spark, bronze) == version
