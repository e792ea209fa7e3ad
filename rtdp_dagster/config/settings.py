"""The whole configuration: every section, with endpoints left empty derived from the local stack."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from rtdp_dagster.config.base import ConfigModel
from rtdp_dagster.config.connections import DeltaConfig, KafkaConfig, PostgresConfig, SparkConfig, TsdbConfig
from rtdp_dagster.config.pipeline import (
    BatchConfig,
    CollectionConfig,
    MaintenanceConfig,
    MasterDataConfig,
    StreamConfig,
)
from rtdp_dagster.config.quality import QualityConfig
from rtdp_dagster.config.serving import GrafanaConfig, ServeConfig
from rtdp_dagster.config.stack import DagsterConfig, StackConfig
from rtdp_dagster.config.stack_profile import apply_stack_profile
from rtdp_dagster.envelope.validation import PointRules


class Settings(ConfigModel):
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
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
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
        # First: the cluster profile's endpoints (all Kafka nodes, PostgreSQL) win over the single node's.
        apply_stack_profile(self)
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
