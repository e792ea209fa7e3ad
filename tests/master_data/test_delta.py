"""Master data in Delta against the real Spark Connect server: load, re-load, lookups and enrichment.

One module fixture loads v0001 and then v0002 through the CLI into a table of its own, and keeps
an enrichment plan built in between to show that a new version is picked up.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.cli import main
from rtdp_dagster.config import Settings
from rtdp_dagster.master_data import MasterData, MasterDataError, load_master_data
from rtdp_dagster.master_data.load import load_into_delta
from rtdp_dagster.master_data.lookup import enrich, enrich_as_of, hosts_as_of, latest_version
from rtdp_dagster.master_data.table import COLUMNS
from rtdp_dagster.spark.session import delta_version

MASTER_DIR = Path(__file__).resolve().parents[2] / "master_data"
MOVED = "site01-host0049"  # site01 in v0001, site03 in v0002


@dataclass
class Loaded:
    path: str
    data: MasterData
    output_v1: list[str]
    output_v2: list[str]
    latest_after_v1: int | None
    # One enrichment plan, built while only v0001 was loaded, and what it gave then.
    probe: DataFrame
    probe_after_v1: tuple


def _cli_load(*args: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["master", "load", "--dir", str(MASTER_DIR), *args]) == 0
    return out.getvalue().splitlines()


def _probed(probe: DataFrame) -> tuple:
    row = probe.first()
    assert row is not None
    return (row["site"], row["master_version"])


@pytest.fixture(scope="module")
def loaded(stack: Settings, spark: SparkSession) -> Iterator[Loaded]:
    table = f"master_data_hosts_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        # The CLI reads its settings from the environment: same test stack, a table of our own.
        patch.setenv("RTDP_MASTER_DATA__TABLE", table)
        path = stack.delta.table_path(table)
        output_v1 = _cli_load("--version", "1")
        latest_after_v1 = latest_version(spark, path)
        probe = enrich(spark.createDataFrame([(MOVED,)], "host string"), hosts_as_of(spark, path))
        probe_after_v1 = _probed(probe)
        output_v2 = _cli_load("--version", "2")
    data = load_master_data(MASTER_DIR)
    yield Loaded(path, data, output_v1, output_v2, latest_after_v1, probe, probe_after_v1)


def test_cli_prints_one_line_per_version_written(loaded: Loaded) -> None:
    assert len(loaded.output_v1) == 1
    assert loaded.output_v1[0].startswith("master v0001: 217 hosts, 5 sites, 5 apps loaded")
    assert loaded.output_v1[0].endswith("(Delta version 0)")
    # Loading v0002 also ends v0001's validity, in the same commit.
    assert [line.split(":")[0] for line in loaded.output_v2] == ["master v0001", "master v0002"]
    assert "rows kept, only valid_to_ms moved" in loaded.output_v2[0]
    assert "until 2026-11-16T00:00:00Z" in loaded.output_v2[0]
    assert loaded.output_v2[1].startswith("master v0002: 217 hosts") and "(latest)" in loaded.output_v2[1]


def test_a_new_version_is_picked_up_without_rebuilding_the_plan(loaded: Loaded, spark: SparkSession) -> None:
    assert loaded.latest_after_v1 == 1 and loaded.probe_after_v1 == ("site01", 1)
    assert latest_version(spark, loaded.path) == 2
    assert _probed(loaded.probe) == ("site03", 2)
    assert latest_version(spark, loaded.path + "_never_written") is None


def test_a_version_out_of_order_with_the_table_is_refused(loaded: Loaded, spark: SparkSession, tmp_path: Path) -> None:
    # A folder holding only v0003, starting before the table's v0002: valid alone, not with the table.
    shutil.copytree(MASTER_DIR / "v0002", tmp_path / "v0003")
    manifest = tmp_path / "v0003" / "manifest.yaml"
    text = manifest.read_text().replace("version: 2", "version: 3")
    manifest.write_text(text.replace("2026-11-16T00:00:00Z", "2020-01-01T00:00:00Z"))
    commit = delta_version(spark, loaded.path)
    with pytest.raises(MasterDataError) as error:
        load_into_delta(spark, loaded.path, load_master_data(tmp_path))
    assert str(error.value) == (
        f"{tmp_path}/v0003: version 3 starts at 2020-01-01T00:00:00Z, not after version 2 ({loaded.path}) "
        "at 2026-11-16T00:00:00Z"
    )
    assert delta_version(spark, loaded.path) == commit


def test_one_row_per_host_per_version_with_validity(loaded: Loaded, spark: SparkSession) -> None:
    table = spark.read.format("delta").load(loaded.path)
    assert tuple(table.columns) == COLUMNS
    per_version = (
        table.groupBy("version", "valid_from_ms", "valid_to_ms")
        .agg(F.count("*").alias("rows"), F.count_distinct("host").alias("hosts"))
        .orderBy("version")
        .collect()
    )
    v1, v2 = loaded.data.versions
    assert [tuple(row) for row in per_version] == [
        (1, v1.valid_from_ms, v2.valid_from_ms, 217, 217),
        (2, v2.valid_from_ms, None, 217, 217),
    ]


def test_reloading_a_version_replaces_exactly_its_rows(loaded: Loaded, spark: SparkSession) -> None:
    def content() -> list[tuple]:
        return sorted(tuple(row) for row in spark.read.format("delta").load(loaded.path).collect())

    before, commit = content(), delta_version(spark, loaded.path)
    result = load_into_delta(spark, loaded.path, loaded.data, only=2)
    assert result.delta_version == commit + 1
    assert content() == before
    history = spark.sql(f"DESCRIBE HISTORY delta.`{loaded.path}` LIMIT 1").first()
    assert history is not None and history["operationParameters"]["predicate"] == "version IN (2)"


def test_hosts_as_of_returns_the_version_valid_at_that_time(loaded: Loaded, spark: SparkSession) -> None:
    v1, v2 = loaded.data.versions

    def seen(as_of_ms: int | None) -> list[tuple]:
        hosts = hosts_as_of(spark, loaded.path, as_of_ms)
        summary = hosts.groupBy("version").agg(F.count("*"), F.max(F.when(F.col("host") == MOVED, F.col("site"))))
        return [tuple(row) for row in summary.collect()]

    assert seen(v1.valid_from_ms - 1) == []
    assert seen(v1.valid_from_ms) == [(1, 217, "site01")]
    assert seen(v2.valid_from_ms - 1) == [(1, 217, "site01")]
    assert seen(v2.valid_from_ms) == [(2, 217, "site03")]
    assert seen(None) == [(2, 217, "site03")]


def test_enrich_tags_known_hosts_and_marks_unknown_ones(
    loaded: Loaded, spark: SparkSession, capsys: pytest.CaptureFixture[str]
) -> None:
    points = spark.createDataFrame(
        [(1, "site02-host0001", 1.0), (2, "i-a2eb1cd9", 2.0), (3, "no-such-host", 3.0), (4, None, 4.0)],
        "n int, host string, value double",
    )
    enriched = enrich(points, hosts_as_of(spark, loaded.path))
    collected = enriched.collect()
    # A left join on a unique key: every point exactly once.
    assert sorted(row["n"] for row in collected) == [1, 2, 3, 4]
    assert enriched.columns == ["n", "host", "value", "site", "app", "region", "master_version", "host_known"]
    rows = {row["n"]: row for row in collected}
    assert (rows[1]["site"], rows[1]["app"], rows[1]["region"], rows[1]["master_version"]) == (
        "site02",
        "app02",
        "eu-west",
        2,
    )
    assert (rows[2]["site"], rows[2]["app"], rows[2]["region"], rows[2]["host_known"]) == (
        "aws-us-east-1",
        "app04",
        "us-east-1",
        True,
    )
    for unknown in (rows[3], rows[4]):
        assert (unknown["site"], unknown["app"], unknown["region"]) == ("unknown", "unknown", "unknown")
        assert unknown["host_known"] is False and unknown["master_version"] is None
    enriched.explain()
    assert "BroadcastHashJoin" in capsys.readouterr().out


def test_enrich_refuses_points_that_already_have_an_enriched_column(loaded: Loaded, spark: SparkSession) -> None:
    points = spark.createDataFrame([("site01-host0001", "elsewhere")], "host string, site string")
    with pytest.raises(ValueError, match="already have column"):
        enrich(points, hosts_as_of(spark, loaded.path))


def test_enrich_as_of_uses_the_version_valid_at_each_point(loaded: Loaded, spark: SparkSession) -> None:
    v1, v2 = loaded.data.versions
    before_v2, at_v2 = v2.valid_from_ms - 1, v2.valid_from_ms
    points = spark.createDataFrame(
        [
            (1, MOVED, before_v2),
            (2, MOVED, at_v2),
            (3, "ac20cd", before_v2),
            (4, "ac20cd", at_v2 + 86_400_000),
            (5, MOVED, v1.valid_from_ms - 1),
            (6, "no-such-host", at_v2),
        ],
        "n int, host string, ums_ts_ long",
    )
    versions = spark.read.format("delta").load(loaded.path)
    collected = enrich_as_of(points, versions).collect()
    # Validity ranges are half-open: a point at a version boundary matches exactly one version.
    assert sorted(row["n"] for row in collected) == [1, 2, 3, 4, 5, 6]
    rows = {row["n"]: row for row in collected}
    picked = {n: (row["site"], row["app"], row["master_version"], row["host_known"]) for n, row in rows.items()}
    assert picked == {
        1: ("site01", "app03", 1, True),
        2: ("site03", "app03", 2, True),
        3: ("aws-us-east-1", "app04", 1, True),
        4: ("aws-us-east-1", "app01", 2, True),
        # Before the first version nothing describes the host.
        5: ("unknown", "unknown", None, False),
        6: ("unknown", "unknown", None, False),
    }
