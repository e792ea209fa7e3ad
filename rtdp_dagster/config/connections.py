"""Where the platform's stores are: Kafka, Spark Connect, the two TSDBs and the Delta tables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from rtdp_dagster.config.base import ConfigModel


class TopicConfig(ConfigModel):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int = Field(default=3, ge=1)
    # Empty: the stack profile's (1; stack.kafka.cluster_replication_factor in the cluster profile).
    replication_factor: int | None = Field(default=None, ge=1)
    # Replicas that must have a write before acks=all acknowledges it. Empty: the broker's default
    # (1; stack.kafka.cluster_min_insync_replicas in the cluster profile).
    min_insync_replicas: int | None = Field(default=None, ge=1)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    # Who sets each record's Kafka timestamp (message.timestamp.type): the broker (LogAppendTime), a
    # clock producers do not control, which the stream judges "too far in the future" by; with
    # CreateTime (the producer's) the stream uses its own receive time instead.
    timestamp_type: Literal["LogAppendTime", "CreateTime"] = "LogAppendTime"

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> TopicConfig:
        replicas, insync = self.replication_factor, self.min_insync_replicas
        if replicas is not None and insync is not None and insync > replicas:
            raise ValueError(f"min_insync_replicas ({insync}) is more than replication_factor ({replicas})")
        return self


class KafkaConfig(ConfigModel):
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


class SparkConfig(ConfigModel):
    # Where clients connect. Empty: the local Spark Connect server of the stack.
    connect_url: str = ""
    # What the Spark Connect server runs on: local[*] here, a cluster master in production; the
    # cluster profile, unless set: the stack's standalone master.
    master: str = "local[2]"
    driver_memory: str = "3g"
    shuffle_partitions: int = Field(default=4, ge=1)
    conf: dict[str, str] = Field(default_factory=dict)


class TsdbEndpoint(ConfigModel):
    # Query API base URL (VictoriaMetrics /api/v1/... and OpenTSDB /api/query).
    url: str = ""
    # OpenTSDB telnet "put" listener.
    put_host: str = ""
    put_port: int = Field(default=0, ge=0, le=65535)
    # OpenTSDB HTTP /api/put listener base URL.
    put_http_url: str = ""


class TsdbConfig(ConfigModel):
    realtime: TsdbEndpoint = Field(default_factory=TsdbEndpoint)
    history: TsdbEndpoint = Field(default_factory=TsdbEndpoint)
    timeout_s: float = Field(default=10.0, gt=0)


class DeltaConfig(ConfigModel):
    # Root of all Delta tables. Empty: <run_dir>/delta. Any Hadoop-compatible URI works.
    root: str = ""

    def table_path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"


_SQL_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


class PostgresConfig(ConfigModel):
    """PostgreSQL of the cluster profile: Dagster's instance storage and the collection state."""

    # Empty: the stack's server (stack.bind_host).
    host: str = ""
    # 0: the stack's server (stack.postgres.port).
    port: int = Field(default=0, ge=0, le=65535)
    # The role the stack creates at initdb (a superuser of its own server) and every client uses.
    user: str = Field(default="rtdp", pattern=_SQL_NAME)
    # Secrets come from the environment only (RTDP_POSTGRES__PASSWORD, which dagster.yaml reads).
    password: SecretStr | None = None
    # Dagster's runs, events and schedules (dagster-postgres), and the collection state: created by
    # `rtdp stack up` when missing.
    dagster_database: str = Field(default="dagster", pattern=_SQL_NAME)
    collection_database: str = Field(default="rtdp_collection", pattern=_SQL_NAME)
