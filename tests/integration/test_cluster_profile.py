"""The cluster profile end to end: three Kafka nodes, a Spark standalone master with two workers under
Spark Connect, Dagster and the collection state on PostgreSQL; all up, all shown, all gone after down.

It starts its own cluster in its own run folder on free ports, beside the session stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.config.stack import STACK_PORT_KEYS
from rtdp_dagster.stack.process import port_in_use
from tests.conftest import PROJECT_ROOT, free_ports

pytestmark = pytest.mark.stack

PASSWORD = "cluster-test:pw\\1"
NODES = [
    "kafka-1",
    "kafka-2",
    "kafka-3",
    "postgres",
    "vm-realtime",
    "vm-history",
    "spark-master",
    "spark-worker-1",
    "spark-worker-2",
    "spark-connect",
]


def _cluster_env(run_dir: Path) -> dict[str, str]:
    ports = iter(free_ports(21))
    env = {
        "RTDP_RUN_DIR": str(run_dir),
        "RTDP_JARS_DIR": str(PROJECT_ROOT / ".rtdp" / "jars"),
        "RTDP_POSTGRES__PASSWORD": PASSWORD,
        "RTDP_SPARK__DRIVER_MEMORY": "1g",
        "RTDP_STACK__KAFKA__EXTRA_NODES": json.dumps(
            [{"port": next(ports), "controller_port": next(ports)} for _ in range(2)]
        ),
        "RTDP_STACK__SPARK_STANDALONE__WORKERS": json.dumps(
            [{"port": next(ports), "ui_port": next(ports)} for _ in range(2)]
        ),
        "RTDP_STACK__SPARK_STANDALONE__EXECUTOR_MEMORY": "512m",
        "RTDP_STACK__SPARK_STANDALONE__WORKER_MEMORY": "1g",
    }
    for key in (
        *STACK_PORT_KEYS,
        "STACK__SPARK_STANDALONE__MASTER_PORT",
        "STACK__SPARK_STANDALONE__MASTER_UI_PORT",
        "STACK__POSTGRES__PORT",
    ):
        env[f"RTDP_{key}"] = str(next(ports))
    return env


def _rtdp(env: dict[str, str], *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtdp_dagster.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _process_groups() -> dict[int, int]:
    """pid -> process group of every live (non-zombie) process."""
    groups = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            groups[int(stat.parent.name)] = int(fields[2])
    return groups


def _check_topic(settings: Settings) -> None:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import ConfigResource, ConfigResourceType

    topic = settings.kafka.points_topic
    admin = KafkaAdminClient(**settings.kafka.client_options(), client_id="rtdp-cluster-test")
    try:
        (described,) = admin.describe_topics([topic])
        partitions = described["partitions"]
        assert [len(p["replica_nodes"]) for p in partitions] == [3, 3, 3], described
        assert all(len(p["isr_nodes"]) == 3 for p in partitions), described
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        (by_name,) = configs.values()
        assert str(by_name[topic]["min.insync.replicas"]["value"]) == "2", configs
    finally:
        admin.close()
    producer = KafkaProducer(**settings.kafka.client_options(), acks="all", enable_idempotence=True)
    try:
        producer.send(topic, key=b"cluster-test", value=b"{}").get(timeout=30)  # on 2 of 3 replicas at least
    finally:
        producer.close()


def _check_spark_on_workers(settings: Settings, table: str) -> None:
    from pyspark.sql import SparkSession

    from rtdp_dagster.batch.delta_log import days_added_by_version

    spark = SparkSession.builder.remote(settings.spark.connect_url).create()
    try:
        rows = spark.range(0, 200_000, 1, 8).selectExpr("id % 3 AS k").groupBy("k").count().collect()
        assert sorted(row["count"] for row in rows) == [66_666, 66_667, 66_667]
        spark.sql(
            "SELECT id, date_add(DATE'2026-10-01', CAST(id % 2 AS INT)) AS event_date FROM range(10)"
        ).write.format("delta").partitionBy("event_date").save(table)
    finally:
        spark.stop()
    # The Delta log the workers wrote, read outside Spark through the filesystem layer.
    assert days_added_by_version(table, -1, 10) == {0: {"2026-10-01", "2026-10-02"}}

    host, ui = settings.stack.bind_host, settings.stack.spark_connect.ui_port
    (application,) = requests.get(f"http://{host}:{ui}/api/v1/applications", timeout=5).json()
    executors = requests.get(f"http://{host}:{ui}/api/v1/applications/{application['id']}/executors", timeout=5)
    on_workers = [e for e in executors.json() if e["id"] != "driver"]
    assert len({e["hostPort"] for e in on_workers}) == 2, on_workers  # one executor per worker
    assert sum(e["totalTasks"] for e in on_workers) >= 8  # the tasks ran there, not in the driver

    standalone = settings.stack.spark_standalone
    master = requests.get(f"http://{host}:{standalone.master_ui_port}/json/", timeout=5).json()
    assert [app["name"] for app in master["activeapps"]] == ["rtdp-spark-connect"]
    assert all(worker["coresused"] >= 1 for worker in master["workers"])


def _check_postgres_storage(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg
    import psycopg2

    from rtdp_dagster.collection.state import CollectionState
    from rtdp_dagster.stack.dagster_home import ensure_dagster_home

    @dg.asset
    def cluster_probe() -> int:
        return 1

    monkeypatch.setenv("RTDP_POSTGRES__PASSWORD", PASSWORD)  # dagster.yaml reads it from the environment
    home = ensure_dagster_home(settings)
    assert "env: RTDP_POSTGRES__PASSWORD" in (home / "dagster.yaml").read_text()
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert dg.materialize([cluster_probe], instance=instance).success
    finally:
        instance.dispose()

    state = CollectionState(settings.collection.state_url)
    try:
        assert state.engine.dialect.name == "postgresql"
        assert state.plan_windows("probe", 1, until_ms=60_000, window_ms=10_000, max_window_ms=30_000, first_start_ms=0)
        assert state.pending_count("probe", 1) == 2
    finally:
        state.dispose()

    postgres = settings.postgres
    for database, query in (
        (postgres.dagster_database, "SELECT count(*) FROM runs"),
        (postgres.collection_database, "SELECT count(*) FROM window_queue"),
    ):
        connection = psycopg2.connect(
            host=postgres.host, port=postgres.port, user=postgres.user, password=PASSWORD, dbname=database
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(query)
                row = cursor.fetchone()
                assert row is not None and row[0] >= 1, (database, query)
        finally:
            connection.close()


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run folder PostgreSQL's system user can reach when the suite runs as root (pytest's tmp_path
    sits under a root-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix="rtdp-cluster-test-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_cluster_profile_up_status_work_down(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _cluster_env(run_dir)
    # The profile from the command line, the rest from the environment, as a user runs it.
    up = _rtdp(env, "stack", "up", "--profile", "cluster")
    settings = load_settings(environ={**env, "RTDP_STACK__PROFILE": "cluster"})
    groups: set[int] = set()
    try:
        assert up.returncode == 0, up.stderr + up.stdout[-2000:]
        status = _rtdp(env, "stack", "status", "--profile", "cluster", "--json")
        assert status.returncode == 0, status.stdout
        rows = json.loads(status.stdout)
        assert [(row["name"], row["state"]) for row in rows] == [(name, "healthy") for name in NODES]
        groups = {row["pid"] for row in rows}
        assert all(Path(row["log_file"]).stat().st_size > 0 for row in rows)

        _check_topic(settings)
        _check_spark_on_workers(settings, str(run_dir / "delta" / "probe"))
        _check_postgres_storage(settings, monkeypatch)
    finally:
        # Ten services, each given its stop timeout before a SIGKILL: minutes on a loaded machine.
        down = _rtdp(env, "stack", "down", "--profile", "cluster", timeout_s=600)
    assert down.returncode == 0, down.stderr
    assert sorted(line.split(":")[0] for line in down.stdout.splitlines()) == sorted(NODES)
    # Nothing left: no process of any service's group (executors, PostgreSQL backends), no port open.
    assert [pid for pid, group in _process_groups().items() if group in groups] == []
    assert [key for key, port in settings.stack.cluster_ports().items() if port_in_use("127.0.0.1", port)] == []
