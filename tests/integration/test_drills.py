"""The cluster profile on this machine, and fault drills on it under the collectors' own load.

One cluster for the module, started as a user starts it (`rtdp stack up --profile cluster`): three Kafka
nodes, a Spark standalone master with two workers under Spark Connect, Dagster and the collection state on
PostgreSQL. First what it shows (every node in `stack status`, replicated topics, Spark tasks on both
workers, storage on PostgreSQL); then a Kafka node, the stream driver and the realtime TSDB each killed
with kill -9 under load and brought back, after which nothing is lost or duplicated, by Kafka offsets and
against the source's own truth computed in pandas; last, `rtdp stack down` leaves no process and no port.

One run of `rtdp stream` + `rtdp ingest` for the faults (one after the other), one reconciliation
(``bench.drills.reconcile``); each drill test checks its fault's part. The full drills (10k points/s,
every fault on its own) are `python -m bench --only drills`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.drills import DRILLS, Cluster, DrillResult, cluster_env, run_faults, stop_leftovers
from rtdp_dagster.config import Settings
from rtdp_dagster.stack.process import port_in_use
from tests.conftest import free_ports
from tests.integration.cluster_checks import (
    NODES,
    check_postgres_storage,
    check_spark_on_workers,
    check_topic,
    process_groups,
    rtdp,
)

pytestmark = [pytest.mark.long_running, pytest.mark.stack, pytest.mark.drills, pytest.mark.timeout(1800)]

PASSWORD = "drill-test:pw\\1"  # a colon and a backslash: it must survive URLs, YAML and libpq
RATE = 504.0  # points/s: 72 hosts x 7 metrics at a 1 s cadence
FAULTS = [("broker_kill", 12.0), ("stream_kill", 3.0), ("realtime_tsdb_outage", 15.0), ("realtime_tsdb_restart", 0.0)]


@dataclass
class ClusterUnderTest:
    cluster: Cluster
    settings: Settings

    @property
    def cli_env(self) -> dict[str, str]:
        """The cluster's variables without the profile: the CLI gets it from `--profile`."""
        return {key: value for key, value in self.cluster.env.items() if key != "RTDP_STACK__PROFILE"}

    def status(self) -> list[dict]:
        status = rtdp(self.cli_env, "stack", "status", "--profile", "cluster", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        return json.loads(status.stdout)


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterUnderTest]:
    # PostgreSQL's system user must reach the run folder when the suite runs as root.
    run_dir = Path(tempfile.mkdtemp(prefix="rtdp-drills-test-"))
    run_dir.chmod(0o711)
    cluster = Cluster(run_dir, cluster_env(run_dir, iter(free_ports(40)), PASSWORD))
    with cluster.environment():
        try:
            under_test = ClusterUnderTest(cluster, cluster.settings())
            up = rtdp(under_test.cli_env, "stack", "up", "--profile", "cluster", timeout_s=900)
            assert up.returncode == 0, up.stderr + up.stdout[-2000:]
            yield under_test
        finally:
            stop_leftovers(cluster.settings())
            cluster.down()  # nothing left to stop when the last test took it down
            if not os.environ.get("DRILLS_KEEP_DIR"):  # kept for a post-mortem when set
                shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def drilled(cluster: ClusterUnderTest) -> Iterator[DrillResult]:
    from rtdp_dagster.spark.session import connect_separately

    # Its own session on the cluster: the suite's session (on the test stack) lives in this process too.
    spark = connect_separately(cluster.settings)
    try:
        result = run_faults(
            cluster.cluster,
            spark,
            "test_faults",
            [(DRILLS[name], outage) for name, outage in FAULTS],
            rate=RATE,
            warm_s=15,
            between_s=5,
            after_s=10,
        )
    finally:
        # Stopped before the tests read the result: the last one takes the cluster (and its server) down.
        spark.stop()
    yield result


def test_cluster_profile_shows_every_node_and_works(cluster: ClusterUnderTest) -> None:
    rows = cluster.status()
    assert [(row["name"], row["state"]) for row in rows] == [(name, "healthy") for name in NODES]
    assert all(Path(row["log_file"]).stat().st_size > 0 for row in rows)
    settings = cluster.settings
    check_topic(settings)
    check_spark_on_workers(settings, str(cluster.cluster.run_dir / "delta" / "probe"))
    check_postgres_storage(settings, PASSWORD)


def _fault(result: DrillResult, name: str) -> dict:
    (fault,) = [f for f in result.faults if f["drill"] == name]
    return fault


def _nothing_lost_or_duplicated(result: DrillResult) -> None:
    f = result.figures
    assert result.error is None, result.error
    assert f["produced"] > 0 and f["collection_gaps"] == []
    assert f["lost"] == 0 and f["extra_in_silver"] == 0 and f["silver_value_differs"] == 0, f
    assert f["duplicated_in_silver"] == 0 and f["silver_point_keys_twice"] == 0, f
    assert all(level == {**level, "missing": 0, "extra": 0, "different": 0} for level in f["rollups"].values()), f


def _realtime_complete(result: DrillResult) -> None:
    f = result.figures
    where = {
        "missing": f["realtime_missing_spans_ms"],
        "repair": f["repair"],
        "operator": {key: result.operator_saw.get(key) for key in ("drained", "repair_due", "stream_log")},
        "faults": result.faults,
    }
    assert f["realtime_missing_after_repair"] == 0, where
    assert f["realtime_duplicate_samples"] == 0, where


def test_broker_kill_loses_and_duplicates_nothing(drilled: DrillResult) -> None:
    fault = _fault(drilled, "broker_kill")
    assert any("leads the most points partitions" in note for note in fault["notes"])
    assert any(
        row["state"] == "stopped" and row["service"].startswith("kafka-") for row in fault["stack_status_during_fault"]
    )
    kafka = drilled.figures["kafka"]
    # Every record on Kafka is in bronze (or quarantine) once, with every point of it once.
    assert kafka["kafka_records"] > 0 and kafka["records_missing"] == 0, kafka
    assert kafka["records_stored"] == kafka["kafka_records"] and kafka["points_stored_twice"] == 0, kafka
    assert kafka["records_with_missing_points"] == 0, kafka
    _nothing_lost_or_duplicated(drilled)


def test_stream_driver_kill_resumes_exactly_once(drilled: DrillResult) -> None:
    fault = _fault(drilled, "stream_kill")
    assert {"service": "stream", "state": "stopped"} in fault["stack_status_during_fault"]
    assert drilled.figures["bronze_points"] == drilled.figures["kafka"]["points_stored"]
    _nothing_lost_or_duplicated(drilled)


def test_realtime_tsdb_outage_is_repaired_from_bronze(drilled: DrillResult) -> None:
    fault = _fault(drilled, "realtime_tsdb_outage")
    assert {"service": "vm-realtime", "state": "stopped"} in fault["stack_status_during_fault"]
    repair = drilled.figures["repair"]
    # The stream recorded the puts that failed while the TSDB was away; the repair wrote them from bronze.
    assert repair["failures_repaired"] >= 1 and repair["points_written"] > 0, repair
    _realtime_complete(drilled)


def test_a_realtime_tsdb_killed_and_back_between_micro_batches_is_repaired_too(drilled: DrillResult) -> None:
    fault = _fault(drilled, "realtime_tsdb_restart")
    assert {"service": "vm-realtime", "state": "stopped"} in fault["stack_status_during_fault"]
    # What it had acknowledged in memory before the kill is put back from bronze, by whichever record
    # of the outage the stream made (its new start time, or a put that failed while it was away).
    _realtime_complete(drilled)


def test_cluster_profile_down_leaves_no_process_and_no_port(cluster: ClusterUnderTest) -> None:
    """Last in the module: after the drills (nodes killed and started again), `stack down` stops them all."""
    stop_leftovers(cluster.settings)  # a drill platform's stream and collectors, if a drill left them
    groups = {row["pid"] for row in cluster.status() if row["pid"] is not None}
    # Ten services, each given its stop timeout before a SIGKILL: minutes on a loaded machine.
    down = rtdp(cluster.cli_env, "stack", "down", "--profile", "cluster", timeout_s=600)
    print(down.stdout)  # each service's stop time, kept with the test's output
    assert down.returncode == 0, down.stderr
    assert sorted(line.split(":")[0] for line in down.stdout.splitlines()) == sorted(NODES)
    # Nothing left: no process of any service's group (executors, PostgreSQL backends), no port open.
    assert [pid for pid, group in process_groups().items() if group in groups] == []
    ports = cluster.settings.stack.cluster_ports()
    assert [key for key, port in ports.items() if port_in_use("127.0.0.1", port)] == []
