"""A realtime VictoriaMetrics killed with kill -9 right after the stream's last put, while the stream
was down too: the restarted stream reads the TSDB's new start time against the one its last run
saved, records that run's last put for repair, and the repair puts back whatever the kill lost.
A VictoriaMetrics of the test's own (it is killed), Spark and Delta of the session."""

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rtdp_dagster.config import TsdbEndpoint
from rtdp_dagster.maintenance.tsdb_repair import repair_realtime
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.streaming.realtime import MasterDataCache, RealtimeWriter
from rtdp_dagster.tsdb.query import export_series, force_flush
from tests.batch.bronze_rows import Record, bronze_frame, write_bronze
from tests.conftest import free_ports

pytestmark = pytest.mark.stack


class PrivateVictoriaMetrics:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        http, put = free_ports(2)
        self.endpoint = TsdbEndpoint(
            url=f"http://127.0.0.1:{http}",
            put_host="127.0.0.1",
            put_port=put,
            put_http_url=f"http://127.0.0.1:{put}",
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        http, put = self.endpoint.url.rsplit(":", 1)[1], self.endpoint.put_port
        command = [
            "victoria-metrics",
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr=127.0.0.1:{http}",
            f"-opentsdbHTTPListenAddr=127.0.0.1:{put}",
            "-search.latencyOffset=1s",
            "-search.disableCache",
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        assert wait_until(self._healthy, timeout_s=30, interval_s=0.2), self.log.read_text()[-2000:]

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.endpoint.url}/health", timeout=1).ok
        except requests.RequestException:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[PrivateVictoriaMetrics]:
    vm = PrivateVictoriaMetrics(tmp_path / "vm", tmp_path / "vm.log")
    vm.start()
    try:
        yield vm
    finally:
        vm.kill()


def _writer(spark, vm: PrivateVictoriaMetrics, delta: Path, state: Path) -> RealtimeWriter:
    """A writer as a freshly started stream has it: empty dedup state, its saved state on disk."""
    return RealtimeWriter(
        spark,
        vm.endpoint,
        5.0,
        100,
        MasterDataCache(spark, str(delta / "master_data_hosts")),
        str(delta / "tsdb_repair"),
        WatermarkDedup(ttl_ms=3_600_000),
        state_file=state,
    )


def test_a_tsdb_killed_while_the_stream_was_down_is_repaired_after_both_restart(
    spark, tmp_path: Path, victoria: PrivateVictoriaMetrics
) -> None:
    start = (int(time.time()) - 600) * 1000
    metric = f"rtdp.test.restart.{uuid.uuid4().hex[:8]}"
    first = [Record(metric, {"host": "h1"}, start + i * 1000, float(i), ums_id=1, offset=i) for i in range(5)]
    second = [
        Record(metric, {"host": "h1"}, start + 10_000 + i * 1000, float(i), ums_id=1, offset=5 + i) for i in range(3)
    ]
    delta, state = tmp_path / "delta", tmp_path / "checkpoint.realtime-state.json"

    assert _writer(spark, victoria, delta, state)(bronze_frame(spark, first), 1)["tsdb_written"] == 5
    # The stream is killed after its put; the TSDB is killed within its flush interval and comes back.
    victoria.kill()
    time.sleep(1.1)  # its start time is in whole seconds: a restart within the same second is not seen
    victoria.start()
    after = _writer(spark, victoria, delta, state)(bronze_frame(spark, second), 2)
    assert after["tsdb_written"] == 3 and after["tsdb_failed"] == 0

    recorded = spark.read.format("delta").load(str(delta / "tsdb_repair")).collect()
    assert [(r["batch_id"], r["min_ts"], r["max_ts"], r["failed"]) for r in recorded] == [
        (2, first[0].ts_ms, first[-1].ts_ms, 5)
    ], "the previous run's last put is at risk"

    write_bronze(spark, first + second, str(delta / "bronze"))
    spark.createDataFrame(  # bronze caught up after the failure was recorded
        [("bronze", 3, int(time.time() * 1000) + 1000, 0)],
        "query string, batch_id long, timestamp_ms long, kafka_lag long",
    ).write.format("delta").save(str(delta / "stream_progress"))
    result = repair_realtime(
        spark,
        bronze_path=str(delta / "bronze"),
        repair_path=str(delta / "tsdb_repair"),
        done_path=str(delta / "tsdb_repair_done"),
        progress_path=str(delta / "stream_progress"),
        master_path=str(delta / "master_data_hosts"),
        query_url=victoria.endpoint.url,
        put_http_url=victoria.endpoint.put_http_url,
    )
    assert result.repaired == 1 and result.checked == 5 and result.failed == 0
    assert result.present + result.written == 5, "each point of the put at risk is there once"

    force_flush(victoria.endpoint.url)
    stored = sorted(
        point for one in export_series(victoria.endpoint.url, metric, stored=True) for point in one["points"]
    )
    assert stored == [(r.ts_ms, r.value) for r in first + second]
