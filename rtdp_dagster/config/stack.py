"""The local stack: which services run, on which ports, and the Dagster instance folder.

Two profiles: ``single`` (the default: one Kafka node, Spark Connect on ``local[2]``, Dagster and the
collection state on SQLite) and ``cluster`` (three Kafka nodes, a Spark standalone master with two
workers under Spark Connect, Dagster and the collection state on PostgreSQL), the multi-node shapes
production runs, on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from rtdp_dagster.config.base import ConfigModel

# Every port the single-node stack listens on, as the environment overrides them (RTDP_<key>):
# a test or drill stack beside another one gets free ones.
STACK_PORT_KEYS = [
    "STACK__KAFKA__PORT",
    "STACK__KAFKA__CONTROLLER_PORT",
    "STACK__VICTORIA_METRICS__REALTIME__HTTP_PORT",
    "STACK__VICTORIA_METRICS__REALTIME__OPENTSDB_PORT",
    "STACK__VICTORIA_METRICS__REALTIME__OPENTSDB_HTTP_PORT",
    "STACK__VICTORIA_METRICS__HISTORY__HTTP_PORT",
    "STACK__VICTORIA_METRICS__HISTORY__OPENTSDB_PORT",
    "STACK__VICTORIA_METRICS__HISTORY__OPENTSDB_HTTP_PORT",
    "STACK__SPARK_CONNECT__PORT",
    "STACK__SPARK_CONNECT__UI_PORT",
]

StackProfile = Literal["single", "cluster"]
# A JVM or Spark memory size: 512m, 2g.
_MEMORY = r"^\d+[kKmMgG]$"


class KafkaNodePorts(ConfigModel):
    """The listeners of one more Kafka node of the cluster profile."""

    port: int = Field(ge=1, le=65535)
    controller_port: int = Field(ge=1, le=65535)


@dataclass(frozen=True)
class KafkaNode:
    """One Kafka node of the active profile, as the stack runs it."""

    node_id: int
    service: str
    port: int
    controller_port: int


class KafkaServiceConfig(ConfigModel):
    enabled: bool = True
    # The single node; the first node of the cluster profile.
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    heap: str = "768m"
    cluster_id: str = "rtdp-local-kraft-cluster1"
    # The other nodes of the cluster profile (`port`, `controller_port` each); every node is a
    # broker and a KRaft controller, so three nodes survive the loss of any one.
    extra_nodes: list[KafkaNodePorts] = Field(
        default_factory=lambda: [
            KafkaNodePorts(port=9094, controller_port=9095),
            KafkaNodePorts(port=9096, controller_port=9097),
        ]
    )
    # Heap of each node of the cluster profile (three JVMs on one machine).
    cluster_node_heap: str = Field(default="512m", pattern=_MEMORY)
    # Replication of the cluster profile: the default for topics and the broker's internal topics;
    # a write acknowledged by acks=all is on min_insync_replicas nodes.
    cluster_replication_factor: int = Field(default=3, ge=1)
    # With 3 replicas and 2 in sync required, acks=all writes go on while any one node is down.
    cluster_min_insync_replicas: int = Field(default=2, ge=1)


class VictoriaMetricsInstance(ConfigModel):
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


class VictoriaMetricsConfig(ConfigModel):
    binary: str = "victoria-metrics"
    # Queries hide points newer than this; the VictoriaMetrics default (30s) is too slow for
    # second-level dashboards.
    latency_offset: str = "1s"
    realtime: VictoriaMetricsInstance = Field(default_factory=VictoriaMetricsInstance)
    history: HistoryVictoriaMetricsInstance = Field(default_factory=HistoryVictoriaMetricsInstance)


class SparkConnectServiceConfig(ConfigModel):
    enabled: bool = True
    port: int = Field(default=15002, ge=1, le=65535)
    ui_port: int = Field(default=4040, ge=1, le=65535)


class SparkWorkerPorts(ConfigModel):
    """One worker of the Spark standalone cluster."""

    port: int = Field(ge=1, le=65535)
    ui_port: int = Field(ge=1, le=65535)


class SparkStandaloneConfig(ConfigModel):
    """The cluster profile's Spark: a standalone master and its workers, started with `spark-class`."""

    # Off: Spark Connect runs on spark.master as in the single-node profile.
    enabled: bool = True
    master_port: int = Field(default=7077, ge=1, le=65535)
    # The master's web UI, also its JSON state (/json/) that health checks read.
    master_ui_port: int = Field(default=8080, ge=1, le=65535)
    # One entry per worker (`port`, `ui_port`), each its own service spark-worker-<n>.
    workers: list[SparkWorkerPorts] = Field(
        default_factory=lambda: [SparkWorkerPorts(port=7078, ui_port=8081), SparkWorkerPorts(port=7079, ui_port=8082)],
        min_length=1,
    )
    # Heap of the master and worker daemons themselves (they only schedule).
    daemon_memory: str = Field(default="256m", pattern=_MEMORY)
    # What each worker offers applications. Cores are slots, not CPUs: two applications (Spark
    # Connect, the stream) each get an executor on every worker.
    worker_cores: int = Field(default=2, ge=1)
    # Memory each worker offers its executors (room for two).
    worker_memory: str = Field(default="2g", pattern=_MEMORY)
    # Heap of each executor: two fit a worker. At 768m a stream executor ran out of heap in the
    # Kafka reader catching up after an outage (100k-point micro-batches, 16 MiB partition fetches).
    executor_memory: str = Field(default="1g", pattern=_MEMORY)
    # Cores of each executor, and of all an application's executors together (spark.cores.max):
    # 1 and 2 give each application one executor on each of two workers.
    executor_cores: int = Field(default=1, ge=1)
    app_max_cores: int = Field(default=2, ge=1)


class PostgresServiceConfig(ConfigModel):
    """The cluster profile's PostgreSQL: Dagster's instance storage and the collection state."""

    # Off: Dagster and the collection state still use postgres.*, a server run elsewhere.
    enabled: bool = True
    # Folder of initdb and postgres; empty: PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian).
    binaries: str = ""
    # Bound on stack.bind_host only; the data folder is <run_dir>/postgres/data.
    port: int = Field(default=5432, ge=1, le=65535)
    # PostgreSQL refuses to run as root: a root stack runs it as this system user.
    os_user_if_root: str = "postgres"
    # PostgreSQL's own defaults: ample for Dagster and the collection state on one machine.
    shared_buffers: str = "128MB"
    max_connections: int = Field(default=100, ge=10)


class PlatformServiceConfig(ConfigModel):
    """A long-running rtdp service the stack may start beside the infrastructure."""

    enabled: bool = False


class StackConfig(ConfigModel):
    # single: one node of each engine; cluster: three Kafka nodes, Spark master + workers,
    # PostgreSQL (`rtdp stack up --profile cluster` sets it for one command).
    profile: StackProfile = "single"
    bind_host: str = "127.0.0.1"
    java: str = "java"
    start_timeout_s: float = Field(default=120.0, gt=0)
    stop_timeout_s: float = Field(default=20.0, gt=0)
    kafka: KafkaServiceConfig = Field(default_factory=KafkaServiceConfig)
    victoria_metrics: VictoriaMetricsConfig = Field(default_factory=VictoriaMetricsConfig)
    spark_connect: SparkConnectServiceConfig = Field(default_factory=SparkConnectServiceConfig)
    spark_standalone: SparkStandaloneConfig = Field(default_factory=SparkStandaloneConfig)
    postgres: PostgresServiceConfig = Field(default_factory=PostgresServiceConfig)
    # `rtdp stream`, `rtdp ingest`, `rtdp serve` and the Dagster webserver + daemon as stack
    # services (started last, stopped first); `rtdp demo` turns them all on.
    stream: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)
    ingest: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)
    serve: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)
    dagster: PlatformServiceConfig = Field(default_factory=PlatformServiceConfig)

    @property
    def clustered(self) -> bool:
        return self.profile == "cluster"

    def kafka_nodes(self) -> list[KafkaNode]:
        """The Kafka nodes of the active profile: one, or the first plus extra_nodes."""
        kafka = self.kafka
        if not self.clustered:
            return [KafkaNode(node_id=1, service="kafka", port=kafka.port, controller_port=kafka.controller_port)]
        ports = [(kafka.port, kafka.controller_port)] + [(n.port, n.controller_port) for n in kafka.extra_nodes]
        return [
            KafkaNode(node_id=index, service=f"kafka-{index}", port=port, controller_port=controller)
            for index, (port, controller) in enumerate(ports, start=1)
        ]

    def cluster_ports(self) -> dict[str, int]:
        """Every listening port of the cluster profile, by configuration key."""
        vm, spark = self.victoria_metrics, self.spark_standalone
        ports = {"stack.kafka.port": self.kafka.port, "stack.kafka.controller_port": self.kafka.controller_port}
        for index, node in enumerate(self.kafka.extra_nodes):
            ports[f"stack.kafka.extra_nodes.{index}.port"] = node.port
            ports[f"stack.kafka.extra_nodes.{index}.controller_port"] = node.controller_port
        for role, instance in (("realtime", vm.realtime), ("history", vm.history)):
            for key in ("http_port", "opentsdb_port", "opentsdb_http_port"):
                ports[f"stack.victoria_metrics.{role}.{key}"] = getattr(instance, key)
        ports["stack.spark_connect.port"] = self.spark_connect.port
        ports["stack.spark_connect.ui_port"] = self.spark_connect.ui_port
        ports["stack.spark_standalone.master_port"] = spark.master_port
        ports["stack.spark_standalone.master_ui_port"] = spark.master_ui_port
        for index, worker in enumerate(spark.workers):
            ports[f"stack.spark_standalone.workers.{index}.port"] = worker.port
            ports[f"stack.spark_standalone.workers.{index}.ui_port"] = worker.ui_port
        ports["stack.postgres.port"] = self.postgres.port
        return ports

    @model_validator(mode="after")
    def _valid_cluster_profile(self) -> StackConfig:
        if not self.clustered:
            return self  # the single-node profile is validated as it always was
        kafka = self.kafka
        nodes = 1 + len(kafka.extra_nodes)
        if nodes < kafka.cluster_replication_factor:
            raise ValueError(
                f"stack.kafka.extra_nodes: {nodes} Kafka node(s) cannot hold "
                f"stack.kafka.cluster_replication_factor={kafka.cluster_replication_factor} replicas"
            )
        if kafka.cluster_min_insync_replicas > kafka.cluster_replication_factor:
            raise ValueError(
                f"stack.kafka.cluster_min_insync_replicas: {kafka.cluster_min_insync_replicas} is more than "
                f"stack.kafka.cluster_replication_factor={kafka.cluster_replication_factor}"
            )
        spark = self.spark_standalone
        if spark.executor_cores > spark.worker_cores:
            raise ValueError(
                f"stack.spark_standalone.executor_cores: {spark.executor_cores} is more than "
                f"stack.spark_standalone.worker_cores={spark.worker_cores}: no worker could run an executor"
            )
        seen: dict[int, str] = {}
        for key, port in self.cluster_ports().items():
            if port in seen:
                raise ValueError(f"{key}: port {port} is already used by {seen[port]}")
            seen[port] = key
        return self


class DagsterConfig(ConfigModel):
    home: str = ""
    webserver_port: int = Field(default=3000, ge=1, le=65535)
