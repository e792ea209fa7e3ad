"""The cluster profile without services: configuration, what it derives, the generated files and specs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rtdp_dagster.batch.assets import POOL, build_batch_assets
from rtdp_dagster.config import ConfigError, Settings, load_settings
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.dagster_home import FORMER_INSTANCE_YAMLS, ensure_dagster_home, instance_yaml
from rtdp_dagster.stack.postgres import write_passfile
from rtdp_dagster.stack.services import all_specs, kafka_server_properties, spark_connect_conf
from rtdp_dagster.stack.spark_conf import platform_conf
from tests.integration.cluster_checks import NODES

PASSWORD = "s3cret:with\\odd chars"


def _cluster(tmp_path: Path, **extra: str) -> Settings:
    return load_settings(
        environ={
            "RTDP_RUN_DIR": str(tmp_path),
            "RTDP_STACK__PROFILE": "cluster",
            "RTDP_POSTGRES__PASSWORD": PASSWORD,
            **extra,
        }
    )


def _config_error(tmp_path: Path, **extra: str) -> str:
    with pytest.raises(ConfigError) as error:
        _cluster(tmp_path, **extra)
    return str(error.value)


def test_single_profile_is_the_default_and_derives_as_before(tmp_path: Path) -> None:
    settings = load_settings(environ={"RTDP_RUN_DIR": str(tmp_path)})
    assert settings.stack.profile == "single"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.spark.master == "local[2]" and settings.stream.master == "local[2]"
    assert {(t.replication_factor, t.min_insync_replicas) for t in settings.kafka.topics} == {(1, None)}
    assert settings.collection.state_url == f"sqlite:///{tmp_path}/collection/state.db"
    assert [spec.name for spec in all_specs(settings)] == ["kafka", "vm-realtime", "vm-history", "spark-connect"]
    assert instance_yaml(settings).startswith("telemetry:") and "storage" not in instance_yaml(settings)


def test_single_node_server_properties_are_unchanged(tmp_path: Path) -> None:
    settings = load_settings(environ={"RTDP_RUN_DIR": str(tmp_path)})
    text = kafka_server_properties(settings, settings.stack.kafka_nodes()[0], tmp_path / "data")
    assert text.splitlines() == [
        "process.roles=broker,controller",
        "node.id=1",
        "controller.quorum.voters=1@127.0.0.1:9093",
        "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        "advertised.listeners=PLAINTEXT://127.0.0.1:9092",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={tmp_path / 'data'}",
        "num.partitions=3",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
    ]


def test_cluster_profile_derives_every_node_and_postgres(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert settings.spark.master == settings.stream.master == "spark://127.0.0.1:7077"
    assert {(t.replication_factor, t.min_insync_replicas) for t in settings.kafka.topics} == {(3, 2)}
    assert settings.collection.state_url == (
        f"postgresql+psycopg2://rtdp@127.0.0.1:5432/rtdp_collection?passfile={tmp_path}/postgres/pgpass"
    )
    # The password is in neither a URL nor the printed configuration.
    assert PASSWORD not in json.dumps(settings.model_dump(mode="json"))


def test_cluster_profile_keeps_what_is_set(tmp_path: Path) -> None:
    config = tmp_path / "rtdp.yaml"
    config.write_text(
        "stream:\n  master: local[2]\n"
        "kafka:\n  bootstrap_servers: broker.example:9092\n"
        "  topics:\n    - {name: rtdp.points.v1, replication_factor: 2}\n"
        "collection:\n  state_url: postgresql+psycopg2://u@db.example/state\n"
    )
    settings = load_settings(
        config,
        environ={"RTDP_STACK__PROFILE": "cluster", "RTDP_POSTGRES__PASSWORD": "x", "RTDP_RUN_DIR": str(tmp_path)},
    )
    assert settings.stream.master == "local[2]" and settings.spark.master == "spark://127.0.0.1:7077"
    assert settings.kafka.bootstrap_servers == "broker.example:9092"
    assert [(t.replication_factor, t.min_insync_replicas) for t in settings.kafka.topics] == [(2, 2)]
    assert settings.collection.state_url == "postgresql+psycopg2://u@db.example/state"


def test_cluster_profile_needs_a_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"postgres\.password: required by stack\.profile cluster"):
        load_settings(environ={"RTDP_RUN_DIR": str(tmp_path), "RTDP_STACK__PROFILE": "cluster"})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"RTDP_STACK__PROFILE": "multi"}, "RTDP_STACK__PROFILE: stack.profile: Input should be 'single' or 'cluster'"),
        (
            {"RTDP_STACK__POSTGRES__PORT": "9094"},
            "stack.postgres.port: port 9094 is already used by stack.kafka.extra_nodes.0.port",
        ),
        (
            {"RTDP_STACK__SPARK_STANDALONE__WORKERS": "[{port: 7078, ui_port: 8080}]"},
            "stack.spark_standalone.workers.0.ui_port: port 8080 is already used by "
            "stack.spark_standalone.master_ui_port",
        ),
        (
            {"RTDP_STACK__KAFKA__EXTRA_NODES": "[{port: 9094, controller_port: 9095}]"},
            "stack.kafka.extra_nodes: 2 Kafka node(s) cannot hold stack.kafka.cluster_replication_factor=3 replicas",
        ),
        ({"RTDP_STACK__KAFKA__CLUSTER_MIN_INSYNC_REPLICAS": "4"}, "stack.kafka.cluster_min_insync_replicas: 4 is more"),
        ({"RTDP_STACK__SPARK_STANDALONE__EXECUTOR_CORES": "3"}, "stack.spark_standalone.executor_cores: 3 is more"),
        ({"RTDP_STACK__SPARK_STANDALONE__WORKER_MEMORY": "lots"}, "stack.spark_standalone.worker_memory"),
        (
            {"RTDP_KAFKA__TOPICS": "[{name: t, replication_factor: 1, min_insync_replicas: 2}]"},
            "kafka.topics.0: Value error, min_insync_replicas (2) is more than replication_factor (1)",
        ),
        ({"RTDP_POSTGRES__USER": "Robert'); DROP"}, "RTDP_POSTGRES__USER: postgres.user"),
    ],
)
def test_bad_cluster_configuration_names_the_key(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    assert message in _config_error(tmp_path, **extra)


def test_cluster_node_server_properties(tmp_path: Path) -> None:
    settings = _cluster(tmp_path)
    node = settings.stack.kafka_nodes()[1]
    lines = kafka_server_properties(settings, node, tmp_path / "data").splitlines()
    assert "node.id=2" in lines
    assert "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097" in lines
    assert "listeners=PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095" in lines
    for line in (
        "default.replication.factor=3",
        "min.insync.replicas=2",
        "offsets.topic.replication.factor=3",
        "transaction.state.log.min.isr=2",
        "unclean.leader.election.enable=false",
    ):
        assert line in lines


def test_cluster_dagster_yaml_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    settings = _cluster(tmp_path, RTDP_STACK__POSTGRES__PORT="26543")
    text = instance_yaml(settings)
    assert PASSWORD not in text
    storage = yaml.safe_load(text)["storage"]["postgres"]["postgres_db"]
    assert storage == {
        "scheme": "postgresql+psycopg2",
        "hostname": "127.0.0.1",
        "port": 26543,
        "username": "rtdp",
        "password": {"env": "RTDP_POSTGRES__PASSWORD"},
        "db_name": "dagster",
    }
    assert yaml.safe_load(text)["concurrency"]["runs"]["max_concurrent_runs"] == 2


def test_dagster_home_follows_the_profile_but_keeps_a_hand_written_file(tmp_path: Path) -> None:
    single = load_settings(environ={"RTDP_RUN_DIR": str(tmp_path)})
    instance = ensure_dagster_home(single) / "dagster.yaml"
    ensure_dagster_home(_cluster(tmp_path))
    assert "postgres_db" in instance.read_text()
    ensure_dagster_home(single)
    assert "postgres_db" not in instance.read_text()
    instance.write_text("telemetry:\n  enabled: false\n")
    ensure_dagster_home(_cluster(tmp_path))
    assert instance.read_text() == "telemetry:\n  enabled: false\n"


def test_the_instance_runs_two_at_a_time_and_one_run_per_pool(tmp_path: Path) -> None:
    # The batch assets' pool: a run writing them waits in the queue while another one writes them.
    settings = load_settings(environ={"RTDP_RUN_DIR": str(tmp_path)})
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(settings))) as instance:
        config = instance.get_concurrency_config()
        assert config.run_queue_config is not None and config.run_queue_config.max_concurrent_runs == 2
        assert config.run_queue_config.should_block_op_concurrency_limited_runs
        assert config.pool_config.pool_granularity is not None
        assert config.pool_config.pool_granularity.value == "run"
        assert config.pool_config.default_pool_limit == 1
    assert {asset.op.pool for asset in build_batch_assets(settings.batch).all()} == {POOL}


def test_the_file_written_before_the_pools_is_rewritten(tmp_path: Path) -> None:
    single = load_settings(environ={"RTDP_RUN_DIR": str(tmp_path)})
    instance = Path(single.dagster.home) / "dagster.yaml"
    instance.parent.mkdir(parents=True)
    instance.write_text(FORMER_INSTANCE_YAMLS[0])
    ensure_dagster_home(single)
    assert instance.read_text() == instance_yaml(single)


def test_cluster_specs_start_order_dependencies_and_stop_groups(tmp_path: Path) -> None:
    settings = _cluster(tmp_path, RTDP_STACK__DAGSTER__ENABLED="true")
    specs = {spec.name: spec for spec in all_specs(settings)}
    assert list(specs) == [*NODES, "dagster"]
    assert specs["spark-worker-2"].depends_on == ("spark-master",)
    # Its executors go to the workers the master knows when it arrives: every worker, registered.
    assert specs["spark-connect"].depends_on == ("spark-master", "spark-worker-1", "spark-worker-2")
    assert "postgres" in specs["dagster"].depends_on
    assert specs["dagster"].env["RTDP_POSTGRES__PASSWORD"] == PASSWORD
    assert {name for name, spec in specs.items() if spec.stop_group == "kafka"} == {"kafka-1", "kafka-2", "kafka-3"}
    assert specs["postgres"].signal_group_on_stop is False
    assert PASSWORD not in " ".join(specs["postgres"].command)
    worker = specs["spark-worker-1"].command
    assert worker[worker.index("--cores") + 1] == "2" and "spark://127.0.0.1:7077" in worker
    # `down` and `status` also know the other profile's services (one started before a switch).
    everything = [spec.name for spec in all_specs(settings, include_disabled=True)]
    assert {"kafka", "stream", "ingest", "serve"} <= set(everything)
    assert manager.process_named(settings, "kafka-2").pid_file == tmp_path / "pids" / "kafka-2.pid"


def test_cluster_spark_conf_bounds_each_application(tmp_path: Path) -> None:
    conf = spark_connect_conf(_cluster(tmp_path))
    assert conf["spark.master"] == "spark://127.0.0.1:7077"
    assert (conf["spark.executor.cores"], conf["spark.cores.max"], conf["spark.executor.memory"]) == ("1", "2", "1g")
    assert "spark.cores.max" not in platform_conf(load_settings(environ={"RTDP_RUN_DIR": str(tmp_path)}))


def test_passfile_is_owner_only_and_escapes_separators(tmp_path: Path) -> None:
    path = write_passfile(_cluster(tmp_path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "127.0.0.1:5432:*:rtdp:s3cret\\:with\\\\odd chars\n"
