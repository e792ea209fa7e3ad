"""PostgreSQL, the collection state store, killed under `rtdp ingest` and brought back: collection
pauses, resumes by itself, and every window is published and logged exactly once.

The store is killed from inside a window's read, so that window's records reach Kafka while its log
row cannot be written: the case that stalled collection in the 10k drill.
"""

import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import TypeAdapter

from rtdp_dagster.collection.ingest import IngestService, SourceRunner
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.state import CollectionState, now_ms
from rtdp_dagster.config import Settings, TopicConfig, load_settings
from rtdp_dagster.config.sources import SourceConfig
from rtdp_dagster.config.stack_profile import postgres_passfile
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.postgres import ensure_databases, postgres_spec
from rtdp_dagster.stack.process import ManagedProcess, wait_until
from rtdp_dagster.stack.services import platform_service_spec
from tests.conftest import PROJECT_ROOT, free_ports

from .conftest import read_topic, sql_source_config
from .test_windows_live import assert_contiguous, covered_rows, fill_table

# Starts a Kafka broker and a PostgreSQL of its own, without the session stack.
pytestmark = pytest.mark.stack

SOURCE = "field_sql"
WINDOW_S = 0.5
STALLED_AFTER_S = 3.0  # the service's figure is at least 20 s; the check is the same
OUTAGE_S = 8.0


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A folder PostgreSQL's system user can reach when the suite runs as root (tmp_path cannot be)."""
    folder = Path(tempfile.mkdtemp(prefix="rtdp-store-outage-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def own_services(run_dir: Path) -> Settings:
    broker, controller, postgres = free_ports(3)
    settings = load_settings(
        environ={
            "RTDP_RUN_DIR": str(run_dir),
            "RTDP_JARS_DIR": str(PROJECT_ROOT / ".rtdp" / "jars"),
            "RTDP_STACK__KAFKA__PORT": str(broker),
            "RTDP_STACK__KAFKA__CONTROLLER_PORT": str(controller),
            "RTDP_STACK__POSTGRES__PORT": str(postgres),
            "RTDP_POSTGRES__PASSWORD": "store-outage-test",
            "RTDP_STACK__VICTORIA_METRICS__REALTIME__ENABLED": "false",
            "RTDP_STACK__VICTORIA_METRICS__HISTORY__ENABLED": "false",
            "RTDP_STACK__SPARK_CONNECT__ENABLED": "false",
        }
    )
    pg = settings.postgres
    passfile = quote(str(postgres_passfile(run_dir)), safe="/")
    settings.collection.state_url = (
        f"postgresql+psycopg2://{pg.user}@{pg.host}:{pg.port}/{pg.collection_database}?passfile={passfile}"
    )
    settings.kafka.topics = [
        TopicConfig(name=settings.kafka.points_topic, partitions=3),
        TopicConfig(name=settings.kafka.deadletter_topic, partitions=1),
    ]
    return settings


class KillsStoreWhileReading:
    """A real source that kills the state store in the middle of one window's read, once armed."""

    def __init__(self, inner: Source, store: ManagedProcess) -> None:
        self.inner, self.store, self.name = inner, store, inner.name
        self.armed = threading.Event()
        self.killed_in: tuple[int, int] | None = None

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]:
        if self.armed.is_set() and self.killed_in is None:
            self.killed_in = (start_ms, end_ms)
            self.store.kill()  # the attempt is recorded already; the records still go to Kafka
        return self.inner.read_window(start_ms, end_ms, now_ms)

    def close(self) -> None:
        self.inner.close()


def test_state_store_outage_pauses_then_logs_every_window_once(run_dir: Path) -> None:
    settings = own_services(run_dir)
    postgres = ManagedProcess(postgres_spec(settings), settings.run_dir)
    try:
        manager.up(settings, log=lambda _: None)  # the broker
        postgres.start()
        postgres.wait_healthy(120)
        ensure_databases(settings)
        state = CollectionState(settings.collection.state_url)
        try:
            collect_through_outage(settings, postgres, state)
        finally:
            state.dispose()
    finally:
        manager.down(settings, log=lambda _: None)  # the broker, and PostgreSQL: a service of the cluster profile
        postgres.stop(timeout_s=30)


def collect_through_outage(settings: Settings, postgres: ManagedProcess, state: CollectionState) -> None:
    run_dir = settings.run_dir
    rows = fill_table(run_dir / "source.db", now_ms() - 1_000, 60, hosts=10, step_ms=100)
    config = TypeAdapter(SourceConfig).validate_python(sql_source_config(run_dir / "source.db", window_s=WINDOW_S))
    source = KillsStoreWhileReading(build_source(config, settings.nab_data_dir), postgres)
    stop = threading.Event()
    runner = SourceRunner(source, config.namespace, WINDOW_S, 300.0, settings, state, stop, now_ms)
    runner.health.stalled_after_s = STALLED_AFTER_S
    # What `rtdp stack status` asks of a stack's `rtdp ingest`, over this service's heartbeat.
    spec = platform_service_spec(settings, "ingest", run_dir / "ingest" / "heartbeat.json", 60.0, progressing=True)
    status = ManagedProcess(spec, run_dir)
    thread = threading.Thread(target=IngestService(settings, [runner], stop).run)
    thread.start()
    try:
        assert wait_until(lambda: runner.health.windows_done >= 3, timeout_s=30)
        assert status.diagnosis() is None

        source.armed.set()
        assert wait_until(lambda: runner.health.unlogged_windows == 1, timeout_s=30), "the store was not killed"
        assert wait_until(lambda: runner.health.consecutive_failures >= 2, timeout_s=30), "failure not noticed"
        assert "state store unavailable" in (runner.health.last_error or "")
        done_during = runner.health.windows_done
        assert wait_until(lambda: "collection stalled" in (status.diagnosis() or ""), timeout_s=STALLED_AFTER_S + 5)
        time.sleep(max(0.0, OUTAGE_S - (time.time() - runner.health.last_window_at)))
        assert runner.health.windows_done == done_during, "a window was logged without the store"

        postgres.start()
        postgres.wait_healthy(120)
        back = time.time()
        # Collection resumes by itself: the window published in the outage gets its row, then the gap.
        assert wait_until(lambda: status.diagnosis() is None, timeout_s=30), "still stalled"
        resumed_s = time.time() - back
        assert resumed_s < 15, f"collection resumed {resumed_s:.1f}s after the store was back"
        assert wait_until(
            lambda: state.pending_count(SOURCE, 1) <= 1 and runner.health.last_error is None, timeout_s=30
        ), "did not catch up after the store returned"
        assert runner.health.unlogged_windows == 0
    finally:
        stop.set()
        thread.join(timeout=30)

    log = state.log_rows(source=SOURCE)
    assert source.killed_in is not None
    windows = Counter((row.window_start, row.window_end) for row in log)
    assert windows[source.killed_in] == 1, "the window published during the outage is not logged once"
    assert not [w for w, n in windows.items() if n > 1], "a window logged twice"
    assert_contiguous(log)
    published = Counter(record["point_key"] for record in read_topic(settings, settings.kafka.points_topic))
    covered = covered_rows(rows, log)
    assert set(published) == covered, (
        f"{len(covered - set(published))} rows lost, {len(set(published) - covered)} published without a log row"
    )
    # Nothing was read twice: the window in flight kept its row in memory instead of being collected again.
    assert max(published.values()) == 1
    assert sum(row.rows_read for row in log) == len(covered)
