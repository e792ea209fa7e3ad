"""One place that turns a source configuration into a source."""

from __future__ import annotations

from pathlib import Path
from typing import assert_never

from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.config.sources import (
    CsvReplaySourceConfig,
    PrometheusSourceConfig,
    SourceConfig,
    SqlSourceConfig,
    SyntheticSourceConfig,
)


def build_source(config: SourceConfig, nab_data_dir: Path) -> Source:
    """The source for a config; nab_data_dir is the platform setting, used unless the CSV replay
    names its own directory. Modules are imported here so a process pays only for what it reads."""
    if isinstance(config, SqlSourceConfig):
        from rtdp_dagster.collection.sources.sql import SqlTableSource

        return SqlTableSource(config)
    if isinstance(config, CsvReplaySourceConfig):
        from rtdp_dagster.collection.sources.csv_replay import CsvReplaySource

        return CsvReplaySource(config, config.directory or nab_data_dir)
    if isinstance(config, PrometheusSourceConfig):
        from rtdp_dagster.collection.sources.prometheus import PrometheusScrapeSource

        return PrometheusScrapeSource(config)
    if isinstance(config, SyntheticSourceConfig):
        from rtdp_dagster.collection.sources.synthetic import SyntheticSource

        return SyntheticSource(config)
    assert_never(config)
