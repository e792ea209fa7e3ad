"""Configuration of collection sources: the part every source shares, and one model per kind.

A section of the configuration (``collection.sources``); collectors build their sources from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class WaveConfig(BaseModel):
    """When a source is read. Wave 1 follows "now"; waves 2 and 3 re-read closed windows."""

    model_config = ConfigDict(extra="forbid")

    # Window length of wave 1, and how often its ticker plans a window.
    window_s: float = Field(default=10.0, gt=0)
    # A long outage is caught up in windows of at most this length.
    max_window_s: float = Field(default=300.0, gt=0)
    # Offsets of the catch-up waves behind "now" (5 minutes and 1 hour by default).
    wave2_offset_s: float = Field(default=300.0, ge=0)
    wave3_offset_s: float = Field(default=3600.0, ge=0)
    # On a source's very first start, wave 1 also collects this much history behind "now"
    # (in windows of max_window_s): a replay or a new source arrives with its past.
    history_s: float = Field(default=0.0, ge=0)


class SourceConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Unique, used in the collection log, the durable queue and Dagster job names.
    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    # datastore.instance.database.table.version.dbpartition.tablepartition
    namespace: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){6}$")
    enabled: bool = True
    waves: WaveConfig = Field(default_factory=WaveConfig)


class ReadinessDelayConfig(BaseModel):
    """How long after its event time a row becomes visible to readers (replays, synthetic data).

    Every row waits ``fixed_s``; on top of that, a ``late_share`` of rows is late by a
    log-uniform draw in [late_min_s, late_max_s] (a long tail, most of it near the minimum),
    and the others by a uniform draw in [0, jitter_s). All zeros: every row is ready at once.
    """

    model_config = ConfigDict(extra="forbid")

    fixed_s: float = Field(default=0.0, ge=0)
    jitter_s: float = Field(default=0.0, ge=0)
    late_share: float = Field(default=0.0, ge=0, le=1)
    late_min_s: float = Field(default=30.0, gt=0)
    late_max_s: float = Field(default=3000.0, gt=0)

    @model_validator(mode="after")
    def _late_range(self) -> ReadinessDelayConfig:
        if self.late_max_s < self.late_min_s:
            raise ValueError(f"late_max_s ({self.late_max_s}) is below late_min_s ({self.late_min_s})")
        return self

    @property
    def max_delay_s(self) -> float:
        """No row is later than this: a reader at event time + max_delay_s sees everything."""
        return self.fixed_s + max(self.jitter_s, self.late_max_s if self.late_share > 0 else 0.0)


class SqlSourceConfig(SourceConfigBase):
    """A table of points in any SQLAlchemy database (SQLite needs no extra driver)."""

    kind: Literal["sql"] = "sql"
    # SQLAlchemy URL, e.g. sqlite:////var/lib/metrics.db or postgresql+psycopg://user@host/db.
    url: str
    # Name of an environment variable holding the database password (secrets stay out of files).
    password_env: str | None = None
    table: str = Field(min_length=1)
    db_schema: str | None = None
    timestamp_column: str = Field(min_length=1)
    # ms / s: epoch numbers; iso: ISO 8601 text (naive means UTC) or a native datetime column.
    timestamp_unit: Literal["ms", "s", "iso"] = "ms"
    # How bounds are written for an iso *text* column; the column must sort like this format.
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    value_column: str = Field(min_length=1)
    tag_columns: list[str] = Field(default_factory=list)
    # Exactly one of: a fixed metric name, or the column that holds it.
    metric: str | None = None
    metric_column: str | None = None
    op_column: str | None = None
    version_column: str | None = None

    @model_validator(mode="after")
    def _one_metric_origin(self) -> SqlSourceConfig:
        if (self.metric is None) == (self.metric_column is None):
            raise ValueError("set exactly one of metric (a fixed name) and metric_column")
        return self


class CsvReplaySourceConfig(SourceConfigBase):
    """Replay of the NAB AWS CloudWatch CSV files (``timestamp,value``) as if collected live."""

    kind: Literal["csv_replay"] = "csv_replay"
    # None: the platform setting nab_data_dir.
    directory: Path | None = None
    file_glob: str = "*.csv"
    # Shift each file so its last point lands on the anchor (floored to whole minutes).
    shift_to_now: bool = False
    # Epoch ms of the anchor; None: the moment the source is created. Set it when several
    # processes replay the same files (wave 1 in `rtdp ingest`, waves 2/3 in Dagster): each
    # would otherwise shift by its own start time, and their points would not line up.
    anchor_ms: int | None = None
    seed: int = 0
    delay: ReadinessDelayConfig = Field(default_factory=ReadinessDelayConfig)


class PrometheusSourceConfig(SourceConfigBase):
    """Scrapes of a Prometheus text-format endpoint (``/metrics``)."""

    kind: Literal["prometheus"] = "prometheus"
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=5.0, gt=0)
    # Full-match regexes on the original Prometheus sample name (e.g. http_requests_bucket).
    allow: str | None = None
    deny: str | None = None
    # Prepended to every mapped metric name, e.g. "prom." gives prom.process_cpu_seconds_total.
    metric_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._/-]*$")
    # Added to every sample, winning over the scraped labels.
    extra_tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("allow", "deny")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regex: {exc}") from exc
        return pattern


SyntheticShape = Literal["sine", "random_walk", "counter", "constant", "percent"]


class SyntheticMetricConfig(BaseModel):
    """One synthetic metric; each (site, host, app) combination is a series of it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9._/-]{1,200}$")
    shape: SyntheticShape
    # Centre of sine, random walk, percent; the value of constant.
    level: float = 50.0
    # Swing of sine and percent; spread of levels between series for constant and random walk.
    amplitude: float = 10.0
    period_s: float = Field(default=3600.0, gt=0)
    # Noise of sine and percent; typical step of the random walk.
    noise: float = Field(default=1.0, ge=0)
    # Counter: mean increase per step, and one reset at a random moment in every such period.
    rate: float = Field(default=10.0, gt=0)
    reset_every_s: float = Field(default=86400.0, gt=0)


def _default_metrics() -> list[SyntheticMetricConfig]:
    return [
        SyntheticMetricConfig(name="sys.cpu.util", shape="percent", level=40, amplitude=25, noise=5),
        SyntheticMetricConfig(name="sys.load.avg", shape="sine", level=2, amplitude=1, noise=0.2),
        SyntheticMetricConfig(name="sys.mem.used_mb", shape="random_walk", level=4096, amplitude=1024, noise=8),
        SyntheticMetricConfig(name="app.requests.count", shape="counter", rate=50),
        SyntheticMetricConfig(name="sys.cpu.cores", shape="constant", level=8, amplitude=0),
        # Bytes per step (10 s cadence): about 20 kB/s in, 12 kB/s out per host.
        SyntheticMetricConfig(name="sys.net.bytes_in", shape="counter", rate=200_000),
        SyntheticMetricConfig(name="sys.net.bytes_out", shape="counter", rate=120_000),
    ]


class MalformedRatesConfig(BaseModel):
    """Share of points replaced by a malformed row of each kind (the sum must stay below 1)."""

    model_config = ConfigDict(extra="forbid")

    missing_timestamp: float = Field(default=0.0, ge=0, le=1)
    non_numeric_value: float = Field(default=0.0, ge=0, le=1)
    nan_value: float = Field(default=0.0, ge=0, le=1)
    inf_value: float = Field(default=0.0, ge=0, le=1)
    future_timestamp: float = Field(default=0.0, ge=0, le=1)
    invalid_metric: float = Field(default=0.0, ge=0, le=1)
    oversize_tag: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_below_one(self) -> MalformedRatesConfig:
        if sum(self.model_dump().values()) >= 1:
            raise ValueError("malformed rates must sum to less than 1")
        return self


class SyntheticSourceConfig(SourceConfigBase):
    """Seeded, reproducible points with injected late, duplicate, corrected, retracted and bad rows."""

    kind: Literal["synthetic"] = "synthetic"
    seed: int = 0
    metrics: list[SyntheticMetricConfig] = Field(default_factory=_default_metrics, min_length=1)
    sites: int = Field(default=2, ge=1)
    hosts_per_site: int = Field(default=5, ge=1)
    apps: int = Field(default=1, ge=1)
    cadence_s: float = Field(default=10.0, ge=0.001)
    lateness: ReadinessDelayConfig = Field(default_factory=ReadinessDelayConfig)
    # Shares of points: yielded twice; later corrected (op u); later retracted (op d).
    duplicate_rate: float = Field(default=0.0, ge=0, le=1)
    correction_rate: float = Field(default=0.0, ge=0, le=1)
    retraction_rate: float = Field(default=0.0, ge=0, le=1)
    # A correction or retraction becomes visible this long after the original (uniform draw).
    revision_delay_min_s: float = Field(default=60.0, gt=0)
    revision_delay_max_s: float = Field(default=1800.0, gt=0)
    malformed: MalformedRatesConfig = Field(default_factory=MalformedRatesConfig)

    @model_validator(mode="after")
    def _consistent(self) -> SyntheticSourceConfig:
        if self.correction_rate + self.retraction_rate > 1:
            raise ValueError("correction_rate + retraction_rate must not exceed 1")
        if self.revision_delay_max_s < self.revision_delay_min_s:
            raise ValueError("revision_delay_max_s is below revision_delay_min_s")
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique: {names}")
        return self

    @property
    def series_count(self) -> int:
        return len(self.metrics) * self.sites * self.hosts_per_site * self.apps


# Which model a config dict becomes is decided by its "kind".
SourceConfig = Annotated[
    SqlSourceConfig | CsvReplaySourceConfig | PrometheusSourceConfig | SyntheticSourceConfig,
    Field(discriminator="kind"),
]
