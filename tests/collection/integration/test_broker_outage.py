"""Broker stopped under load, then started again: collection pauses, windows queue, nothing is lost."""

import threading
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from rtdp_dagster.collection.ingest import IngestService, SourceRunner
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.state import CollectionState, now_ms
from rtdp_dagster.config import Settings, TopicConfig, load_settings
from rtdp_dagster.config.sources import SourceConfig
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.process import ManagedProcess, wait_until
from rtdp_dagster.stack.services import kafka_spec
from tests.conftest import PROJECT_ROOT, free_ports

from .conftest import read_topic, sql_source_config
from .test_windows_live import assert_contiguous, covered_rows, fill_table

# Starts and stops a Kafka broker of its own, without the session stack.
pytestmark = pytest.mark.stack


def own_kafka(tmp_path: Path) -> Settings:
    broker, controller = free_ports(2)
    return load_settings(
        environ={
            "RTDP_RUN_DIR": str(tmp_path / "stack"),
            "RTDP_JARS_DIR": str(PROJECT_ROOT / ".rtdp" / "jars"),
            "RTDP_STACK__KAFKA__PORT": str(broker),
            "RTDP_STACK__KAFKA__CONTROLLER_PORT": str(controller),
            "RTDP_STACK__VICTORIA_METRICS__REALTIME__ENABLED": "false",
            "RTDP_STACK__VICTORIA_METRICS__HISTORY__ENABLED": "false",
            "RTDP_STACK__SPARK_CONNECT__ENABLED": "false",
            "RTDP_COLLECTION__STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        }
    )


def test_broker_outage_pauses_then_delivers_everything(tmp_path: Path) -> None:
    settings = own_kafka(tmp_path)
    settings.kafka.topics = [
        TopicConfig(name=settings.kafka.points_topic, partitions=3),
        TopicConfig(name=settings.kafka.deadletter_topic, partitions=1),
    ]
    manager.up(settings, log=lambda _: None)
    broker = ManagedProcess(kafka_spec(settings), settings.run_dir)
    stop = threading.Event()
    state = CollectionState(settings.collection.state_url)
    thread = None
    try:
        rows = fill_table(tmp_path / "source.db", now_ms() - 1_000, 40, hosts=10, step_ms=100)
        config = TypeAdapter(SourceConfig).validate_python(sql_source_config(tmp_path / "source.db", window_s=0.5))
        runner = SourceRunner(
            build_source(config, settings.nab_data_dir), config.namespace, 0.5, 300.0, settings, state, stop, now_ms
        )
        thread = threading.Thread(target=IngestService(settings, [runner], stop).run)
        thread.start()
        assert wait_until(lambda: runner.health.windows_done >= 3, timeout_s=30)

        broker.stop(timeout_s=20)  # the broker goes away under load
        assert wait_until(lambda: runner.health.consecutive_failures >= 1, timeout_s=60), "failure not noticed"
        assert wait_until(lambda: state.pending_count("field_sql", 1) >= 4, timeout_s=30), "windows did not queue"
        queued = state.pending_count("field_sql", 1)

        manager.up(settings, log=lambda _: None)  # and comes back
        assert wait_until(
            lambda: state.pending_count("field_sql", 1) <= 1 and runner.health.last_error is None, timeout_s=90
        ), "did not catch up after the broker returned"
        assert queued >= 4
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
        records = read_topic(settings, settings.kafka.points_topic) if broker.pid() else []
        manager.down(settings, log=lambda _: None)
    log = state.log_rows(source="field_sql")
    assert_contiguous(log)
    missing = covered_rows(rows, log) - {r["point_key"] for r in records}
    assert not missing, f"{len(missing)} rows lost across the outage"
    state.dispose()
