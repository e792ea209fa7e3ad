"""Dagster resources: the Dagster-facing view of the configuration sections (rtdp.yaml + env).

Each resource is built from its section model (``from_config``) and gives the model back
(``config()``/``endpoint()``), so behaviour such as ``table_path`` or the Kafka client options lives
once, in the model; the resource only holds what Dagster needs as run config.
"""

from __future__ import annotations

import os

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from rtdp_dagster.config import CONFIG_ENV, DeltaConfig, KafkaConfig, Settings, TsdbEndpoint
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.spark.session import client_config

# Where the Kafka password comes from (secrets are read from the environment only).
SASL_PASSWORD_ENV = "RTDP_KAFKA__SASL_PASSWORD"


class KafkaResource(dg.ConfigurableResource):
    """Connection to the Kafka cluster (the local KRaft node by default): the connection keys of ``kafka``."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    @classmethod
    def from_config(cls, kafka: KafkaConfig) -> KafkaResource:
        connection = kafka.model_dump(
            include={"bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username"}
        )
        # Dagster reads the secret from the environment at run time: it is never stored in run config.
        password = dg.EnvVar(SASL_PASSWORD_ENV) if kafka.sasl_password is not None else None
        return cls(**connection, sasl_password=password)

    def config(self) -> KafkaConfig:
        return KafkaConfig.model_validate(self.model_dump())


class TsdbResource(dg.ConfigurableResource):
    """An OpenTSDB-protocol TSDB: an endpoint of ``tsdb`` (query URL, put listeners) and the request timeout."""

    url: str
    put_host: str
    put_port: int
    put_http_url: str
    timeout_s: float = 10.0

    @classmethod
    def from_config(cls, endpoint: TsdbEndpoint, timeout_s: float) -> TsdbResource:
        return cls(**endpoint.model_dump(), timeout_s=timeout_s)

    def endpoint(self) -> TsdbEndpoint:
        return TsdbEndpoint.model_validate(self.model_dump(exclude={"timeout_s"}))


class DeltaTablesResource(dg.ConfigurableResource):
    """Where the Delta tables live (local folder or any Hadoop-compatible URI): ``delta.root``."""

    root: str

    @classmethod
    def from_config(cls, delta: DeltaConfig) -> DeltaTablesResource:
        return cls(root=delta.root)

    def config(self) -> DeltaConfig:
        return DeltaConfig(root=self.root)

    def table_path(self, name: str) -> str:
        return self.config().table_path(name)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location, each from its configuration section."""
    return {
        "spark": LazyPySparkResource(spark_config=client_config(settings)),
        "kafka": KafkaResource.from_config(settings.kafka),
        "realtime_tsdb": TsdbResource.from_config(settings.tsdb.realtime, settings.tsdb.timeout_s),
        "history_tsdb": TsdbResource.from_config(settings.tsdb.history, settings.tsdb.timeout_s),
        "delta": DeltaTablesResource.from_config(settings.delta),
        "platform": PlatformConfigResource(config_file=os.environ.get(CONFIG_ENV)),
    }
