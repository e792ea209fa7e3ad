"""Dagster resources: the Dagster-facing view of the one configuration (rtdp.yaml + env)."""

from __future__ import annotations

import os

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from rtdp_dagster.config import KafkaConfig, Settings, TsdbEndpoint
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.spark.session import client_config


class KafkaResource(dg.ConfigurableResource):
    """Connection to the Kafka cluster (the local KRaft node by default)."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def config(self) -> KafkaConfig:
        return KafkaConfig.model_validate(self.model_dump())


class TsdbResource(dg.ConfigurableResource):
    """An OpenTSDB-protocol TSDB: query URL and put listeners."""

    url: str
    put_host: str
    put_port: int
    put_http_url: str
    timeout_s: float = 10.0

    def endpoint(self) -> TsdbEndpoint:
        return TsdbEndpoint(
            url=self.url, put_host=self.put_host, put_port=self.put_port, put_http_url=self.put_http_url
        )


class DeltaTablesResource(dg.ConfigurableResource):
    """Where the Delta tables live (local folder or any Hadoop-compatible URI)."""

    root: str

    def table_path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"


_SASL_PASSWORD_ENV = "RTDP_KAFKA__SASL_PASSWORD"


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    def tsdb(endpoint: TsdbEndpoint) -> TsdbResource:
        return TsdbResource(**endpoint.model_dump(), timeout_s=settings.tsdb.timeout_s)

    return {
        "spark": LazyPySparkResource(spark_config=client_config(settings)),
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            security_protocol=settings.kafka.security_protocol,
            sasl_mechanism=settings.kafka.sasl_mechanism,
            sasl_username=settings.kafka.sasl_username,
            # The secret is read by Dagster at run time and never stored in run config.
            sasl_password=dg.EnvVar(_SASL_PASSWORD_ENV) if _SASL_PASSWORD_ENV in os.environ else None,
        ),
        "realtime_tsdb": tsdb(settings.tsdb.realtime),
        "history_tsdb": tsdb(settings.tsdb.history),
        "delta": DeltaTablesResource(root=settings.delta.root),
        "platform": PlatformConfigResource(config_file=os.environ.get("RTDP_CONFIG")),
    }
