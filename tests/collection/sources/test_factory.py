"""Source configs: the discriminated union, its validation, and build_source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.sources.csv_replay import CsvReplaySource
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.sources.prometheus import PrometheusScrapeSource
from rtdp_dagster.collection.sources.sql import SqlTableSource
from rtdp_dagster.collection.sources.synthetic import SyntheticSource
from rtdp_dagster.config.sources import SourceConfig

ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceConfig)
COMMON = {"namespace": "datastore.instance.database.table.v1.0.0"}


def config(**options: Any) -> Any:
    return ADAPTER.validate_python({**COMMON, **options})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {
                "kind": "sql",
                "name": "db",
                "url": "sqlite://",
                "table": "t",
                "timestamp_column": "ts",
                "value_column": "v",
                "metric": "m",
            },
            SqlTableSource,
        ),
        ({"kind": "csv_replay", "name": "nab"}, CsvReplaySource),
        ({"kind": "prometheus", "name": "vm", "url": "http://127.0.0.1:8428/metrics"}, PrometheusScrapeSource),
        ({"kind": "synthetic", "name": "synth"}, SyntheticSource),
    ],
)
def test_each_kind_builds_its_source(tmp_path: Path, options: dict[str, Any], expected: type) -> None:
    source = build_source(config(**options), nab_data_dir=tmp_path)
    try:
        assert isinstance(source, expected)
        assert isinstance(source, Source)
        assert source.name == options["name"]
    finally:
        source.close()


def test_csv_replay_reads_nab_data_dir_unless_it_names_a_directory(tmp_path: Path) -> None:
    platform_dir, own_dir = tmp_path / "platform", tmp_path / "own"
    for directory, value in ((platform_dir, "1"), (own_dir, "2")):
        directory.mkdir()
        (directory / "ec2_cpu_utilization_abcdef.csv").write_text(f"timestamp,value\n2024-01-01 00:00:00,{value}\n")
    default = build_source(config(kind="csv_replay", name="nab"), nab_data_dir=platform_dir)
    own = build_source(config(kind="csv_replay", name="nab", directory=str(own_dir)), nab_data_dir=platform_dir)
    assert [r.value for r in default.read_window(0, 2**60, 2**60)] == [1.0]
    assert [r.value for r in own.read_window(0, 2**60, 2**60)] == [2.0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "synthetic", "name": "s", "colour": "red"}, "Extra inputs are not permitted"),
        ({"kind": "kafka", "name": "s"}, "does not match any of the expected tags"),
        (
            {
                "kind": "sql",
                "name": "db",
                "url": "sqlite://",
                "table": "t",
                "timestamp_column": "ts",
                "value_column": "v",
            },
            "exactly one of metric",
        ),
        ({"kind": "prometheus", "name": "p", "url": "http://x/metrics", "allow": "("}, "not a valid regex"),
        ({"kind": "synthetic", "name": "s", "malformed": {"nan_value": 0.6, "inf_value": 0.5}}, "sum to less than 1"),
        ({"kind": "csv_replay", "name": "n", "delay": {"late_min_s": 60, "late_max_s": 30}}, "below late_min_s"),
    ],
)
def test_invalid_configs_are_refused_with_a_reason(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**options)
