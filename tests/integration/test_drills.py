"""Fault drills on the cluster profile, small load: a Kafka node, the stream driver and the realtime
TSDB each killed with kill -9 under the collectors' own load and brought back; afterwards nothing is
lost or duplicated, by Kafka offsets and against the source's own truth computed in pandas.

One cluster and one run of `rtdp stream` + `rtdp ingest` for the three faults (one after the other),
one reconciliation (``bench.drills.reconcile``); each test checks its fault's part. The full drills
(10k points/s, every fault on its own) are `python -m bench --only drills`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.drills import DRILLS, Cluster, DrillResult, cluster_env, run_faults, stop_leftovers
from tests.conftest import free_ports

pytestmark = [pytest.mark.stack, pytest.mark.drills, pytest.mark.timeout(1800)]

RATE = 504.0  # points/s: 72 hosts x 7 metrics at a 1 s cadence
FAULTS = [("broker_kill", 12.0), ("stream_kill", 3.0), ("realtime_tsdb_outage", 15.0), ("realtime_tsdb_restart", 0.0)]


@pytest.fixture(scope="module")
def drilled() -> Iterator[DrillResult]:
    # PostgreSQL's system user must reach the run folder when the suite runs as root.
    run_dir = Path(tempfile.mkdtemp(prefix="rtdp-drills-test-"))
    run_dir.chmod(0o711)
    cluster = Cluster(run_dir, cluster_env(run_dir, iter(free_ports(40)), "drill-test:pw"))
    with cluster.environment():
        try:
            from rtdp_dagster.spark.session import connect_separately

            # Its own session on the cluster: the suite's session (on the test stack) lives in this process too.
            spark = connect_separately(cluster.up())
            try:
                yield run_faults(
                    cluster,
                    spark,
                    "test_faults",
                    [(DRILLS[name], outage) for name, outage in FAULTS],
                    rate=RATE,
                    warm_s=15,
                    between_s=5,
                    after_s=10,
                )
            finally:
                spark.stop()
        finally:
            stop_leftovers(cluster.settings())
            cluster.down()
            if not os.environ.get("DRILLS_KEEP_DIR"):  # kept for a post-mortem when set
                shutil.rmtree(run_dir, ignore_errors=True)


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
