"""One validated configuration for the whole platform.

Sources, later ones winning: built-in defaults, the YAML file (``RTDP_CONFIG`` or ``./rtdp.yaml``),
then environment variables ``RTDP_<SECTION>__<KEY>`` (``__`` descends one level, e.g.
``RTDP_KAFKA__BOOTSTRAP_SERVERS``). Endpoints left empty are derived from the local stack, so
pointing at a remote Kafka, Spark or TSDB is configuration only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from rtdp_dagster.collection.source_config import (
    MalformedRatesConfig,
    ReadinessDelayConfig,
    SourceConfig,
    SyntheticSourceConfig,
)
from rtdp_dagster.envelope.batch_builder import UmsBatchBounds
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.validation import PointRules
from rtdp_dagster.quality.names import DEFAULT_SEVERITIES, Severity

ENV_PREFIX = "RTDP_"
CONFIG_ENV = "RTDP_CONFIG"
DEFAULT_CONFIG_FILE = "rtdp.yaml"


class ConfigError(Exception):
    """A configuration problem, with a message that names the offending key."""


class _Model(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")


class KafkaServiceConfig(_Model):
    enabled: bool = True
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    heap: str = "768m"
    cluster_id: str = "rtdp-local-kraft-cluster1"


class VictoriaMetricsInstance(_Model):
    """The realtime TSDB: fresh points, 14 days."""

    enabled: bool = True
    http_port: int = Field(default=8428, ge=1, le=65535)
    opentsdb_port: int = Field(default=4242, ge=1, le=65535)
    opentsdb_http_port: int = Field(default=4243, ge=1, le=65535)
    retention: str = Field(default="14d", pattern=r"^\d+[hdwy]$")


class HistoryVictoriaMetricsInstance(VictoriaMetricsInstance):
    """The history TSDB: rollups, 3 years."""

    http_port: int = Field(default=8429, ge=1, le=65535)
    opentsdb_port: int = Field(default=4244, ge=1, le=65535)
    opentsdb_http_port: int = Field(default=4245, ge=1, le=65535)
    retention: str = Field(default="3y", pattern=r"^\d+[hdwy]$")


class VictoriaMetricsConfig(_Model):
    binary: str = "victoria-metrics"
    # Queries hide points newer than this; the VictoriaMetrics default (30s) is too slow for
    # second-level dashboards.
    latency_offset: str = "1s"
    realtime: VictoriaMetricsInstance = Field(default_factory=VictoriaMetricsInstance)
    history: HistoryVictoriaMetricsInstance = Field(default_factory=HistoryVictoriaMetricsInstance)


class SparkConnectServiceConfig(_Model):
    enabled: bool = True
    port: int = Field(default=15002, ge=1, le=65535)
    ui_port: int = Field(default=4040, ge=1, le=65535)


class PlatformServiceConfig(_Model):
    """A long-running rtdp service the stack may start beside the infrastructure."""

    enabled: bool = False


class StackConfig(_Model):
    bind_host: str = "127.0.0.1"
    java: str = "java"
    start_timeout_s: float = Field(default=120.0, gt=0)
    stop_timeout_s: float = Field(default=20.0, gt=0)
    kafka: KafkaServiceConfig = Field(default_factory=KafkaServiceConfig)
    victoria_metrics: VictoriaMetricsConfig = Field(default_factory=VictoriaMetricsConfig)
    spark_connect: SparkConnectServiceConfig = Field(default_factory=SparkConnectServiceConfig)
    # `rtdp stream`, `rtdp ingest`, `rtdp serve` and the Dagster webserver + daemon as stack
    # services (started last, stopped first); `rtdp demo` turns them all on.
    stream: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)
    ingest: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)
    serve: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)
    dagster: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)


class TopicConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    # Who sets each record's Kafka timestamp (message.timestamp.type): the broker (LogAppendTime), a
    # clock producers do not control, which the stream judges "too far in the future" by; with
    # CreateTime (the producer's) the stream uses its own receive time instead.
    timestamp_type: Literal["LogAppendTime", "CreateTime"] = "LogAppendTime"


class KafkaConfig(_Model):
    bootstrap_servers: str = ""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    # Secrets come from the environment only (RTDP_KAFKA__SASL_PASSWORD).
    sasl_password: SecretStr | None = None
    # zstd: kafka-python sends about 3x more records/s compressed than uncompressed here.
    compression_type: Literal["zstd", "gzip", "snappy"] | None = "zstd"
    points_topic: str = "rtdp.points.v1"
    deadletter_topic: str = "rtdp.deadletter"
    topics: list[TopicConfig] = Field(
        default_factory=lambda: [
            TopicConfig(name="rtdp.points.v1", partitions=3),
            TopicConfig(name="rtdp.deadletter", partitions=1),
            TopicConfig(name="rtdp.smoke", partitions=2, retention_ms=24 * 3600 * 1000),
        ]
    )

    def client_options(self) -> dict[str, Any]:
        """Connection options for kafka-python clients."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return options

    def spark_options(self) -> dict[str, str]:
        """The same connection as options for Spark's Kafka source."""
        options = {
            "kafka.bootstrap.servers": self.bootstrap_servers,
            "kafka.security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            password = self.sasl_password.get_secret_value() if self.sasl_password else ""
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.sasl_mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            options["kafka.sasl.mechanism"] = self.sasl_mechanism
            options["kafka.sasl.jaas.config"] = (
                f'{module} required username="{self.sasl_username}" password="{password}";'
            )
        return options


class SparkConfig(_Model):
    # Where clients connect. Empty: the local Spark Connect server of the stack.
    connect_url: str = ""
    # What the Spark Connect server runs on: local[*] here, a cluster master in production.
    master: str = "local[2]"
    driver_memory: str = "3g"
    shuffle_partitions: int = Field(default=4, ge=1)
    conf: dict[str, str] = Field(default_factory=dict)


class TsdbEndpoint(_Model):
    # Query API base URL (VictoriaMetrics /api/v1/... and OpenTSDB /api/query).
    url: str = ""
    # OpenTSDB telnet "put" listener.
    put_host: str = ""
    put_port: int = Field(default=0, ge=0, le=65535)
    # OpenTSDB HTTP /api/put listener base URL.
    put_http_url: str = ""


class TsdbConfig(_Model):
    realtime: TsdbEndpoint = Field(default_factory=TsdbEndpoint)
    history: TsdbEndpoint = Field(default_factory=TsdbEndpoint)
    timeout_s: float = Field(default=10.0, gt=0)


class DeltaConfig(_Model):
    # Root of all Delta tables. Empty: <run_dir>/delta. Any Hadoop-compatible URI works.
    root: str = ""

    def table_path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"


class DagsterConfig(_Model):
    home: str = ""
    webserver_port: int = Field(default=3000, ge=1, le=65535)


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


class CollectionConfig(_Model):
    # Durable window queue, cursors and collection log. Empty: SQLite under <run_dir>/collection.
    state_url: str = ""
    # Forget seen point keys this long after waves 3 has passed a window.
    seen_retention_margin_s: float = Field(default=3600.0, ge=0)
    # When the catch-up waves run (UTC cron); each covers everything closed since its last run.
    wave2_cron: str = "*/5 * * * *"
    wave3_cron: str = "10 * * * *"
    # What collectors write to Kafka: 1, a record per point; 2, UMS batches (docs/envelope-v2.md).
    # 1 until the stream reads v2; v1 stays readable always (foreign producers, history, replays).
    envelope_version: int = Field(default=1, ge=1, le=2)
    # Bounds of a v2 record (points, bytes, linger); unused with envelope_version 1.
    ums_batch: UmsBatchBounds = Field(default_factory=UmsBatchBounds)
    sources: list[SourceConfig] = Field(default_factory=_default_sources)

    @model_validator(mode="after")
    def _unique_source_names(self) -> CollectionConfig:
        names = [source.name for source in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        return self


class StreamConfig(_Model):
    """The speed layer (`rtdp stream`): Kafka → quarantine / bronze and → realtime TSDB."""

    # Java regex of the points topics; consumers ignore the version in the name.
    topic_pattern: str = r"rtdp\.points\..*"
    trigger_interval_s: float = Field(default=1.0, gt=0)
    # Points older than the watermark still reach bronze but not the realtime TSDB (counted).
    # Default: the wave-3 offset (1 h) plus a 15 min margin.
    dedup_ttl_s: float = Field(default=4500.0, gt=0)
    max_offsets_per_trigger: int = Field(default=500_000, ge=1)
    # Each micro-batch's Kafka ranges are split into at least this many tasks: a multiple of the
    # cores keeps them all busy (3 partitions on 2 cores left one idle a third of the time).
    min_partitions: int = Field(default=4, ge=1)
    # Empty: <run_dir>/checkpoints. One folder per query below it.
    checkpoint_root: str = ""
    # The stream is its own Spark application (in production: spark-submit to the cluster).
    master: str = "local[2]"
    driver_memory: str = "2g"
    shuffle_partitions: int = Field(default=2, ge=1)
    # Points per OpenTSDB HTTP put request from the stream.
    tsdb_put_chunk: int = Field(default=5000, ge=1)
    # How often, between micro-batches, the stream looks for a new master-data version.
    master_check_s: float = Field(default=5.0, ge=0)
    # A stale heartbeat older than this shows the stream as failing in Dagster.
    heartbeat_stale_s: float = Field(default=120.0, gt=0)


class MasterDataConfig(_Model):
    """Master data (servers, sites, applications, topology): files of record and their Delta table."""

    # Files of record: one folder per version (v0001, v0002, ...), each with a manifest.yaml.
    dir: Path = Path("master_data")
    # The point tag whose value is looked up as the host when enriching.
    host_tag: str = Field(default="host", min_length=1)
    # Delta table under delta.root: one row per host per version.
    table: str = Field(default="master_data_hosts", pattern=r"^[A-Za-z0-9_.-]+$")


class BatchConfig(_Model):
    """The batch layer: daily partitions in UTC from start_date, retention, late data."""

    start_date: str = Field(default="2026-10-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    # Silver and rollups are kept this long (ARCHITECTURE.md: 3 years).
    retention_days: int = Field(default=3 * 365, ge=1)
    # The late-data sensor requests at most this many closed days per tick.
    late_days_per_tick: int = Field(default=7, ge=1)
    # Rollup levels published to the history TSDB.
    history_levels: list[str] = Field(default_factory=lambda: ["1m", "1h", "1d", "1w", "1mo", "1y"])


class MaintenanceConfig(_Model):
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


class ServeConfig(_Model):
    """The query router (`rtdp serve`): the OpenTSDB HTTP API over the realtime TSDB and the rollups."""

    host: str = "127.0.0.1"
    port: int = Field(default=4246, ge=0, le=65535)
    # Limits: a query outside them gets a 400 naming the limit.
    max_range: str = Field(default="3y", pattern=r"^\d+[smhdwy]$")
    max_series: int = Field(default=5000, ge=1)
    max_datapoints: int = Field(default=1_000_000, ge=1)
    request_timeout_s: float = Field(default=30.0, gt=0)
    # Downsample intervals shorter than this read raw points from the realtime TSDB while the range lies
    # inside its retention; longer ones read the rollups where the history TSDB has them.
    realtime_below: str = Field(default="1h", pattern=r"^\d+[smhdwy]$")
    # How long the newest rollup bucket per metric and level, and the suggest lists, are reused.
    history_end_cache_s: float = Field(default=30.0, ge=0)
    metadata_cache_s: float = Field(default=30.0, ge=0)
    # History reads are reused this long (rollups change only when a partition is re-published); 0: off.
    history_cache_s: float = Field(default=60.0, ge=0)
    history_cache_entries: int = Field(default=256, ge=0)
    # Browser origins allowed to call the router (Grafana's browser access mode).
    cors_origins: list[str] = Field(default_factory=lambda: ["*"])
    # Per metric, status text -> numeric code; published at /api/rtdp/value_mappings for dashboards.
    value_mappings: dict[str, dict[str, float]] = Field(default_factory=dict)


class GrafanaConfig(_Model):
    """Grafana: where `rtdp grafana publish` pushes the dashboards; its token comes from GRAFANA_TOKEN only."""

    url: str = "http://127.0.0.1:3000"
    # The query router as Grafana's server reaches it (the data source URL). Empty: the local router.
    router_url: str = ""
    timeout_s: float = Field(default=10.0, gt=0)


class CadenceOverride(_Model):
    """A fixed expected cadence for the metrics matching a glob (instead of learning it)."""

    pattern: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._/*?-]+$")
    cadence_s: float = Field(gt=0)


_DAILY_CRON = r"^([0-5]?[0-9]) ([01]?[0-9]|2[0-3]) \* \* \*$"


class FreshnessConfig(_Model):
    """By when each asset must be updated (UTC cron deadlines); a late asset fails its freshness check."""

    # Daily deadlines "M H * * *" (UTC).
    silver_deadline_cron: str = Field(default="30 1 * * *", pattern=_DAILY_CRON)
    rollups_deadline_cron: str = Field(default="0 2 * * *", pattern=_DAILY_CRON)
    coarse_rollups_deadline_cron: str = Field(default="0 3 * * *", pattern=_DAILY_CRON)
    collection_log_max_age_s: float = Field(default=900.0, gt=0)


class QualityConfig(_Model):
    """Data-quality rules: metric kinds (also the stream's validation), completeness, severities, freshness."""

    metric_kinds: MetricKinds = Field(default_factory=MetricKinds)
    # Expected cadence: the first matching override, else learned per series (median step) from silver
    # of the day and the days before it, else the default.
    cadence_overrides: list[CadenceOverride] = Field(default_factory=list)
    cadence_history_days: int = Field(default=7, ge=0)
    default_cadence_s: float = Field(default=10.0, gt=0)
    # A step longer than gap_factor cadences is a gap; a series missing more than this share fails.
    gap_factor: float = Field(default=3.0, gt=1)
    max_missing_share: float = Field(default=0.05, ge=0, le=1)
    # A counter step down to at most this fraction of the previous value is a reset, not a defect.
    counter_reset_max_fraction: float = Field(default=0.1, ge=0, lt=1)
    # Relative slack for min <= avg <= max (avg is sum/count over 12-decimal rounded values).
    avg_tolerance: float = Field(default=1e-9, ge=0)
    # asset -> check -> WARN or ERROR (e.g. RTDP_QUALITY__SEVERITIES__SILVER__COMPLETENESS=ERROR); ERROR
    # failures on silver keep the day out of the rollups.
    severities: dict[str, dict[str, Severity]] = Field(default_factory=dict)
    sample_rows: int = Field(default=5, ge=1, le=100)
    # Great Expectations Data Docs (HTML). Empty: <run_dir>/gx_data_docs.
    data_docs_dir: str = ""
    freshness: FreshnessConfig = Field(default_factory=FreshnessConfig)

    @model_validator(mode="after")
    def _known_checks(self) -> QualityConfig:
        unknown = [
            f"{asset}.{check}"
            for asset, checks in self.severities.items()
            for check in checks
            if check not in DEFAULT_SEVERITIES.get(asset, {})
        ]
        if unknown:
            known = [f"{asset}.{check}" for asset, checks in DEFAULT_SEVERITIES.items() for check in checks]
            raise ValueError(f"severities name unknown checks {unknown}; known: {', '.join(known)}")
        self.severities = {
            asset: {**checks, **self.severities.get(asset, {})} for asset, checks in DEFAULT_SEVERITIES.items()
        }
        return self


class Settings(_Model):
    run_dir: Path = Path(".rtdp")
    # Resolved JVM jars (Kafka broker, Spark extras); shared by every run folder.
    jars_dir: Path = Path(".rtdp/jars")
    # Real AWS CloudWatch series (NAB); optional, workloads fall back to synthetic data.
    nab_data_dir: Path = Path("../shared/data/nab/realAWSCloudwatch")
    stack: StackConfig = Field(default_factory=StackConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    delta: DeltaConfig = Field(default_factory=DeltaConfig)
    tsdb: TsdbConfig = Field(default_factory=TsdbConfig)
    dagster: DagsterConfig = Field(default_factory=DagsterConfig)
    collection: CollectionConfig = Field(default_factory=CollectionConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    # Rules a point must satisfy; shared by collectors, the stream and the batch checks.
    validation: PointRules = Field(default_factory=PointRules)
    master_data: MasterDataConfig = Field(default_factory=MasterDataConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    grafana: GrafanaConfig = Field(default_factory=GrafanaConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    @model_validator(mode="after")
    def _derive_local_endpoints(self) -> Settings:
        """Fill every endpoint left empty from the local stack's ports."""
        host = self.stack.bind_host
        self.run_dir = self.run_dir.resolve()
        self.jars_dir = self.jars_dir.resolve()
        if not self.kafka.bootstrap_servers:
            self.kafka.bootstrap_servers = f"{host}:{self.stack.kafka.port}"
        if not self.spark.connect_url:
            self.spark.connect_url = f"sc://{host}:{self.stack.spark_connect.port}"
        vm = self.stack.victoria_metrics
        for endpoint, instance in ((self.tsdb.realtime, vm.realtime), (self.tsdb.history, vm.history)):
            endpoint.url = endpoint.url or f"http://{host}:{instance.http_port}"
            endpoint.put_host = endpoint.put_host or host
            endpoint.put_port = endpoint.put_port or instance.opentsdb_port
            endpoint.put_http_url = endpoint.put_http_url or f"http://{host}:{instance.opentsdb_http_port}"
        if not self.delta.root:
            self.delta.root = str(self.run_dir / "delta")
        if not self.collection.state_url:
            self.collection.state_url = f"sqlite:///{self.run_dir / 'collection' / 'state.db'}"
        if not self.stream.checkpoint_root:
            self.stream.checkpoint_root = str(self.run_dir / "checkpoints")
        if not self.dagster.home:
            self.dagster.home = str(self.run_dir / "dagster")
        return self

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"


def _set_path(tree: dict[str, Any], dotted: list[str], value: str) -> None:
    node = tree
    for key in dotted[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(dotted)}: cannot override inside non-mapping key {key!r}")
        node = child
    # Scalars stay strings (validation converts "9092" or "false" where the key wants it, and a
    # string key keeps "false" as text); lists and mappings are written in YAML/JSON flow style.
    node[dotted[-1]] = yaml.safe_load(value) if value.lstrip().startswith(("[", "{")) else value


def env_overrides(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested overrides from RTDP_* variables, and a map from dotted key to variable name."""
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        dotted = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(dotted):
            raise ConfigError(f"{name}: empty key segment in environment override")
        _set_path(tree, dotted, value)
        origin[".".join(dotted)] = name
    return tree, origin


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, source: str, origin: dict[str, str]) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        where = origin.get(key, source)
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{where}: {key}: {message} (got {item.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate the configuration; raises ConfigError naming the bad key."""
    environ = dict(os.environ if environ is None else environ)
    explicit = path or environ.get(CONFIG_ENV)
    config_path = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if config_path.exists():
        try:
            loaded = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_path}: top level must be a mapping")
        data = loaded
    elif explicit:
        raise ConfigError(f"{config_path}: configuration file not found")
    overrides, origin = env_overrides(environ)
    try:
        return Settings.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(config_path), origin)) from None
