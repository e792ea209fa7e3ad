"""One validated configuration for the whole platform.

Sources, later ones winning: built-in defaults, the YAML file (``RTDP_CONFIG`` or ``./rtdp.yaml``),
then environment variables ``RTDP_<SECTION>__<KEY>`` (``__`` descends one level, e.g.
``RTDP_KAFKA__BOOTSTRAP_SERVERS``). Endpoints left empty are derived from the local stack, so
pointing at a remote Kafka, Spark or TSDB is configuration only.

One module per few sections; components take the section they need (``KafkaConfig``,
``TsdbEndpoint``, ``QualityConfig``, ...) rather than the whole ``Settings``. This package imports
nothing of the platform but the envelope's value models (point rules, metric kinds, batch bounds).
"""

from rtdp_dagster.config.base import ConfigModel
from rtdp_dagster.config.connections import (
    DeltaConfig,
    KafkaConfig,
    PostgresConfig,
    SparkConfig,
    TopicConfig,
    TsdbConfig,
    TsdbEndpoint,
)
from rtdp_dagster.config.errors import ConfigError
from rtdp_dagster.config.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    env_overrides,
    load_settings,
    merge,
)
from rtdp_dagster.config.pipeline import (
    BatchConfig,
    CollectionConfig,
    MaintenanceConfig,
    MasterDataConfig,
    StreamConfig,
)
from rtdp_dagster.config.quality import (
    CHECKS,
    DEFAULT_SEVERITIES,
    CadenceOverride,
    FreshnessConfig,
    QualityConfig,
    Severity,
)
from rtdp_dagster.config.serving import GrafanaConfig, ServeConfig
from rtdp_dagster.config.settings import Settings
from rtdp_dagster.config.stack import (
    DagsterConfig,
    HistoryVictoriaMetricsInstance,
    KafkaNode,
    KafkaNodePorts,
    KafkaServiceConfig,
    PlatformServiceConfig,
    PostgresServiceConfig,
    SparkConnectServiceConfig,
    SparkStandaloneConfig,
    SparkWorkerPorts,
    StackConfig,
    StackProfile,
    VictoriaMetricsConfig,
    VictoriaMetricsInstance,
)

__all__ = [
    "CHECKS",
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_SEVERITIES",
    "ENV_PREFIX",
    "BatchConfig",
    "CadenceOverride",
    "CollectionConfig",
    "ConfigError",
    "ConfigModel",
    "DagsterConfig",
    "DeltaConfig",
    "FreshnessConfig",
    "GrafanaConfig",
    "HistoryVictoriaMetricsInstance",
    "KafkaConfig",
    "KafkaNode",
    "KafkaNodePorts",
    "KafkaServiceConfig",
    "MaintenanceConfig",
    "MasterDataConfig",
    "PlatformServiceConfig",
    "PostgresConfig",
    "PostgresServiceConfig",
    "QualityConfig",
    "ServeConfig",
    "Settings",
    "Severity",
    "SparkConfig",
    "SparkConnectServiceConfig",
    "SparkStandaloneConfig",
    "SparkWorkerPorts",
    "StackConfig",
    "StackProfile",
    "StreamConfig",
    "TopicConfig",
    "TsdbConfig",
    "TsdbEndpoint",
    "VictoriaMetricsConfig",
    "VictoriaMetricsInstance",
    "env_overrides",
    "load_settings",
    "merge",
]
