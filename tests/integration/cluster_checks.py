"""What the cluster profile must show once up, and leave once down: every node healthy in `stack status`, a
points topic replicated on three nodes, Spark jobs on both workers, Dagster and the collection state on
PostgreSQL; after `stack down`, no process and no port. Used by ``test_drills.py`` on its cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from rtdp_dagster.config import Settings

# The cluster profile's nodes in start order, as `stack status` lists them.
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


def rtdp(env: dict[str, str], *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: only the cluster's variables, none of the test session's."""
    return subprocess.run(
        [sys.executable, "-m", "rtdp_dagster.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def process_groups() -> dict[int, int]:
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


def check_topic(settings: Settings) -> None:
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


def check_spark_on_workers(settings: Settings, table: str) -> None:
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

    # Generous timeouts: the UIs answer slowly while both cores are busy (the suite runs two workers).
    host, ui = settings.stack.bind_host, settings.stack.spark_connect.ui_port
    (application,) = requests.get(f"http://{host}:{ui}/api/v1/applications", timeout=30).json()
    executors = requests.get(f"http://{host}:{ui}/api/v1/applications/{application['id']}/executors", timeout=30)
    on_workers = [e for e in executors.json() if e["id"] != "driver"]
    assert len({e["hostPort"] for e in on_workers}) == 2, on_workers  # one executor per worker
    assert sum(e["totalTasks"] for e in on_workers) >= 8  # the tasks ran there, not in the driver

    standalone = settings.stack.spark_standalone
    master = requests.get(f"http://{host}:{standalone.master_ui_port}/json/", timeout=30).json()
    assert [app["name"] for app in master["activeapps"]] == ["rtdp-spark-connect"]
    assert all(worker["coresused"] >= 1 for worker in master["workers"])


def check_postgres_storage(settings: Settings, password: str) -> None:
    """Needs the password in this process's environment too: dagster.yaml reads it from there."""
    import dagster as dg
    import psycopg2

    from rtdp_dagster.collection.state import CollectionState
    from rtdp_dagster.stack.dagster_home import ensure_dagster_home

    @dg.asset
    def cluster_probe() -> int:
        return 1

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
            host=postgres.host, port=postgres.port, user=postgres.user, password=password, dbname=database
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(query)
                row = cursor.fetchone()
                assert row is not None and row[0] >= 1, (database, query)
        finally:
            connection.close()
