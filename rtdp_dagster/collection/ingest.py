"""`rtdp ingest`: wave 1, the long-running collection service.

Per source, a ticker plans windows into the durable queue and one worker executes them in
order. A slow source makes windows queue up and then catch up; a broker or source outage pauses
the worker (windows keep queueing durably) with capped back-off until it recovers. SIGTERM
finishes the window in flight, flushes the producer and exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka.errors import KafkaError

from rtdp_dagster.collection.collector import WindowContext, batch_packer, collect_window
from rtdp_dagster.collection.metrics import tsdb_sink
from rtdp_dagster.collection.publisher import Publisher, PublishError
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.state import CollectionState
from rtdp_dagster.config import Settings
from rtdp_dagster.envelope.point_packer import PointPacker
from rtdp_dagster.envelope.validation import PointValidator
from rtdp_dagster.heartbeat import write_heartbeat

logger = logging.getLogger("rtdp.ingest")

WAVE = 1
MAX_BACKOFF_S = 30.0


@dataclass
class RunnerHealth:
    source: str
    windows_done: int = 0
    rows_read: int = 0
    rows_dead_lettered: int = 0
    last_window_end: int | None = None
    pending_windows: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    updated_at: float = field(default_factory=time.time)


class SourceRunner:
    """The ticker and the worker of one source."""

    def __init__(
        self,
        source: Source,
        namespace: str,
        window_s: float,
        max_window_s: float,
        settings: Settings,
        state: CollectionState,
        stop: threading.Event,
        clock_ms: Callable[[], int],
        history_s: float = 0.0,
    ) -> None:
        self.source, self.namespace = source, namespace
        self.history_ms = int(history_s * 1000)
        self.window_ms, self.max_window_ms = int(window_s * 1000), int(max_window_s * 1000)
        self.settings, self.state, self.stop, self.clock_ms = settings, state, stop, clock_ms
        self.health = RunnerHealth(source=source.name)
        self._wake = threading.Event()
        self._publisher: Publisher | None = None
        # v2 only; made with the publisher (it needs the topic's partitions) and kept across windows.
        self._packer: PointPacker | None = None
        self._validator = PointValidator(settings.validation)
        self._on_window = tsdb_sink(settings.tsdb.realtime)

    def plan(self) -> None:
        now = self.clock_ms()
        planned = self.state.plan_windows(
            self.source.name,
            WAVE,
            now,
            self.window_ms,
            self.max_window_ms,
            first_start_ms=now - max(self.window_ms, self.history_ms),
        )
        if planned:
            self._wake.set()

    def ticker(self) -> None:
        while not self.stop.is_set():
            try:
                self.plan()
            except Exception:  # the state store being briefly unavailable must not end the ticker
                logger.exception("%s: planning windows failed; retrying next tick", self.source.name)
            self.stop.wait(self.window_ms / 1000)

    def _context(self) -> WindowContext:
        if self._publisher is None:
            self._publisher = Publisher(self.settings.kafka, client_id=f"rtdp-ingest-{self.source.name}")
            self._packer = batch_packer(self.settings.collection, self.settings.validation, self._publisher)
        return WindowContext(
            source=self.source,
            namespace=self.namespace,
            validator=self._validator,
            on_window=self._on_window,
            publisher=self._publisher,
            state=self.state,
            clock_ms=self.clock_ms,
            packer=self._packer,
        )

    def work_once(self) -> bool:
        """Execute the next pending window; False when there is none."""
        window = self.state.next_window(self.source.name, WAVE)
        if window is None:
            return False
        log = collect_window(self._context(), window)
        self.health.windows_done += 1
        self.health.rows_read += log.rows_read
        self.health.rows_dead_lettered += log.rows_dead_lettered
        self.health.last_window_end = log.window_end
        return True

    def worker(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                if not self.work_once():
                    self._wake.wait(self.window_ms / 1000)
                    self._wake.clear()
                self.health.consecutive_failures = 0
                self.health.last_error = None
                backoff = 0.5
            except (PublishError, KafkaError) as exc:
                self._fail(f"Kafka unavailable, windows stay queued: {exc}", backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception as exc:  # a failing source read: retry the same window later
                logger.exception("%s: window failed", self.source.name)
                self._fail(f"{type(exc).__name__}: {exc}", backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                self.health.pending_windows = self.state.pending_count(self.source.name, WAVE)
                self.health.updated_at = time.time()
        self.close()

    def _fail(self, message: str, backoff: float) -> None:
        self.health.consecutive_failures += 1
        self.health.last_error = message
        logger.warning(
            "%s: %s (attempt %d, next in %.1fs)", self.source.name, message, self.health.consecutive_failures, backoff
        )
        # The producer is kept: it reconnects by itself when the broker returns, and the window,
        # still pending, is published again (duplicates collapse downstream by point_key).
        self.stop.wait(backoff)

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        self.source.close()


class IngestService:
    def __init__(self, settings: Settings, runners: list[SourceRunner], stop: threading.Event) -> None:
        self.settings, self.runners, self.stop = settings, runners, stop
        self.heartbeat_file = settings.run_dir / "ingest" / "heartbeat.json"

    def write_heartbeat(self) -> None:
        write_heartbeat(self.heartbeat_file, {"at": time.time(), "sources": [r.health.__dict__ for r in self.runners]})

    def run(self) -> None:
        threads = []
        for runner in self.runners:
            for role, target in (("ticker", runner.ticker), ("worker", runner.worker)):
                thread = threading.Thread(target=target, name=f"{runner.source.name}-{role}", daemon=True)
                thread.start()
                threads.append(thread)
        logger.info("ingest running: %s", ", ".join(r.source.name for r in self.runners))
        while not self.stop.is_set():
            self.write_heartbeat()
            self.stop.wait(1.0)
        for runner in self.runners:
            runner.wake()  # an idle worker notices the stop at once
        for thread in threads:
            thread.join(timeout=self.settings.stack.stop_timeout_s)
        self.write_heartbeat()
        logger.info("ingest stopped")

    def run_once(self) -> None:
        """Plan up to now and execute every pending window, then return (tests, catch-up)."""
        for runner in self.runners:
            runner.plan()
            while runner.work_once():
                pass
            runner.close()
        self.write_heartbeat()
