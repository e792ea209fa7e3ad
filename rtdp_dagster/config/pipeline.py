"""The data paths: collection, the stream (speed layer), master data, the batch layer and its upkeep."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from rtdp_dagster.config.base import ConfigModel
from rtdp_dagster.config.sources import (
    MalformedRatesConfig,
    ReadinessDelayConfig,
    SourceConfig,
    SyntheticSourceConfig,
)
from rtdp_dagster.envelope.batch_builder import UmsBatchBounds


def _default_sources() -> list[SourceConfig]:
    """A synthetic fleet with every kind of fault; more sources come from rtdp.yaml."""
    return [
        SyntheticSourceConfig(
            name="synthetic_fleet",
            namespace="synthetic.local.fleet.metrics.v1.0.0",
            cadence_s=10.0,
            lateness=ReadinessDelayConfig(jitter_s=2.0, late_share=0.05, late_min_s=30.0, late_max_s=1800.0),
            duplicate_rate=0.01,
            correction_rate=0.005,
            retraction_rate=0.002,
            malformed=MalformedRatesConfig(non_numeric_value=0.001, nan_value=0.001, invalid_metric=0.001),
        )
    ]


class CollectionConfig(ConfigModel):
    # Durable window queue, cursors and collection log. Empty: SQLite under <run_dir>/collection;
    # in the cluster stack profile, the stack's PostgreSQL (postgres.collection_database).
    state_url: str = ""
    # Forget seen point keys this long after waves 3 has passed a window.
    seen_retention_margin_s: float = Field(default=3600.0, ge=0)
    # When the catch-up waves run (UTC cron); each covers everything closed since its last run.
    wave2_cron: str = "*/5 * * * *"
    wave3_cron: str = "10 * * * *"
    # What collectors write to Kafka: 2, UMS batches (docs/envelope-v2.md); 1, a record per point
    # (for consumers that read only v1). The stream reads both always (foreign producers, history, replays).
    envelope_version: int = Field(default=2, ge=1, le=2)
    # Bounds of a v2 record (points, bytes, linger); unused with envelope_version 1.
    ums_batch: UmsBatchBounds = Field(default_factory=UmsBatchBounds)
    sources: list[SourceConfig] = Field(default_factory=_default_sources)

    @model_validator(mode="after")
    def _unique_source_names(self) -> CollectionConfig:
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        return self


class StreamConfig(ConfigModel):
    """The speed layer (`rtdp stream`): Kafka → quarantine / bronze and → realtime TSDB."""

    # Java regex of the points topics; consumers ignore the version in the name.
    topic_pattern: str = r"rtdp\.points\..*"
    trigger_interval_s: float = Field(default=1.0, gt=0)
    # Points older than the watermark still reach bronze but not the realtime TSDB (counted).
    # Default: the wave-3 offset (1 h) plus a 15 min margin.
    dedup_ttl_s: float = Field(default=4500.0, gt=0)
    max_offsets_per_trigger: int = Field(default=500_000, ge=1)
    # Points per micro-batch at most, for topics of v2 records: the records per trigger become this
    # over collection.ums_batch.max_points (and at most max_offsets_per_trigger), which bounds what
    # the driver collects for the TSDB (200k points: 100 full records). Unset: records only, as v1
    # topics need (a budget would allow one point per record slot there).
    max_points_per_trigger: int | None = Field(default=None, ge=1)
    # Each micro-batch's Kafka ranges are split into at least this many tasks: a multiple of the
    # cores keeps them all busy (3 partitions on 2 cores left one idle a third of the time).
    min_partitions: int = Field(default=4, ge=1)
    # Empty: <run_dir>/checkpoints. One folder per query below it.
    checkpoint_root: str = ""
    # The stream is its own Spark application (in production: spark-submit to the cluster); the
    # cluster stack profile, unless set: the stack's standalone master.
    master: str = "local[2]"
    # The heap; the process takes about 0.6 GiB more (RocksDB state, code, Arrow buffers). A
    # micro-batch caches only its Kafka records, so 1 GiB holds 200k-point batches.
    driver_memory: str = "1g"
    # More options for the stream's JVMs (driver and executors). `["-XX:TieredStopAtLevel=1"]`, the C1
    # compiler alone, suits short runs (`--once`, the test suite): far less CPU spent compiling in the
    # first minutes, slower code after them (a long-running stream keeps the default).
    java_options: list[str] = Field(default_factory=list)
    shuffle_partitions: int = Field(default=2, ge=1)
    # Points per OpenTSDB HTTP put request from the stream.
    tsdb_put_chunk: int = Field(default=5000, ge=1)
    # How often, between micro-batches, the stream looks for a new master-data version.
    master_check_s: float = Field(default=5.0, ge=0)
    # A stale heartbeat older than this shows the stream as failing in Dagster.
    heartbeat_stale_s: float = Field(default=120.0, gt=0)
    # A failed query (an executor lost, a full disk) is started again from its checkpoint, after
    # restart_backoff_s doubled per failure in a row (at most 60 s); after this many failures in a
    # row `rtdp stream` exits with the error (0: at the first). A query that ran restart_reset_s
    # before failing starts the count again.
    restart_attempts: int = Field(default=5, ge=0)
    restart_backoff_s: float = Field(default=5.0, gt=0)
    restart_reset_s: float = Field(default=300.0, gt=0)


class MasterDataConfig(ConfigModel):
    """Master data (servers, sites, applications, topology): files of record and their Delta table."""

    # Files of record: one folder per version (v0001, v0002, ...), each with a manifest.yaml.
    dir: Path = Path("master_data")
    # Delta table under delta.root: one row per host per version.
    table: str = Field(default="master_data_hosts", pattern=r"^[A-Za-z0-9_.-]+$")


class BatchConfig(ConfigModel):
    """The batch layer: daily partitions in UTC from start_date, retention, late data."""

    start_date: str = Field(default="2026-10-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    # Silver and rollups are kept this long (3 years by default).
    retention_days: int = Field(default=3 * 365, ge=1)
    # The late-data sensor requests at most this many closed days per tick.
    late_days_per_tick: int = Field(default=7, ge=1)
    # Rollup levels published to the history TSDB.
    history_levels: list[str] = Field(default_factory=lambda: ["1m", "1h", "1d", "1w", "1mo", "1y"])


class MaintenanceConfig(ConfigModel):
    """Upkeep jobs: realtime-TSDB repair from bronze, Delta OPTIMIZE/VACUUM and retention."""

    tsdb_repair_cron: str = "*/15 * * * *"
    # Daily, off-peak (UTC), after the daily batch job (00:30).
    delta_cron: str = "15 3 * * *"
    # Partitions of the last days are still written (today, late data, re-runs): never compacted.
    optimize_min_age_days: int = Field(default=2, ge=1)
    # OPTIMIZE rollup_1m/1h/1d with ZORDER BY series_key (rewrites whole partitions).
    zorder_rollups: bool = False
    # Delta keeps removed files this long for readers and time travel; Delta's own floor is 7 days.
    vacuum_retain_hours: int = Field(default=168, ge=168)
    # Bronze is what silver is recomputed from; deleting it earlier than silver loses that.
    bronze_retention_days: int = Field(default=3 * 365, ge=1)
