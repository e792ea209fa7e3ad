"""`rtdp ingest`: wave 1, the long-running collection service.

Per source, a ticker plans windows into the durable queue and one worker executes them in
order. A slow source makes windows queue up and then catch up; a broker or source outage pauses
the worker (windows keep queueing durably) with capped back-off until it recovers. So does an
outage of the state store, however long: planning and the worker retry, and a window published
while its log row could not be written keeps that row in memory until the store takes it (it is
not read again). SIGTERM finishes the window in flight, flushes the producer and exits.

The heartbeat carries, per source, when the last window was logged and after how long without
one collection counts as stalled (``heartbeat.stalled_sources``), so `rtdp stack status` shows a
worker that is alive but not collecting as unhealthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka.errors import KafkaError

from rtdp_dagster.collection.collector import PublishedWindow, WindowContext, batch_packer, log_window, publish_window
from rtdp_dagster.collection.metrics import tsdb_sink
from rtdp_dagster.collection.publisher import Publisher, PublishError
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.state import CollectionState, store_unavailable
from rtdp_dagster.config import Settings
from rtdp_dagster.envelope.point_packer import PointPacker
from rtdp_dagster.envelope.validation import PointValidator
from rtdp_dagster.heartbeat import write_heartbeat

logger = logging.getLogger("rtdp.ingest")

WAVE = 1
MAX_BACKOFF_S = 30.0
# Reaching the state store again is cheap: retried more often than a broker, so collection resumes
# within seconds of the store's return.
MAX_STORE_BACKOFF_S = 5.0
TICKER_LOG_EVERY_S = 30.0
# Without a logged window for this many windows (and at least STALLED_MIN_S) collection is stalled.
STALLED_AFTER_WINDOWS = 4
STALLED_MIN_S = 20.0


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
    # When the last window was logged (the start, before the first): stalled when too long ago.
    last_window_at: float = field(default_factory=time.time)
    stalled_after_s: float = STALLED_MIN_S
    # Published windows whose log row waits for the state store to return (0 or 1: the worker goes no
    # further until it is written).
    unlogged_windows: int = 0


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
        self.health = RunnerHealth(
            source=source.name, stalled_after_s=max(STALLED_AFTER_WINDOWS * window_s, STALLED_MIN_S)
        )
        self._wake = threading.Event()
        self._publisher: Publisher | None = None
        self._unlogged: PublishedWindow | None = None
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
        failing_since: float | None = None
        logged_at = 0.0
        while not self.stop.is_set():
            try:
                self.plan()
                if failing_since is not None:
                    logger.info("%s: planning again after %.0fs", self.source.name, time.time() - failing_since)
                failing_since = None
            except Exception as exc:  # nothing must end the ticker; the next tick plans the gap too
                failing_since = failing_since or time.time()
                if not store_unavailable(exc):
                    logger.exception("%s: planning windows failed; retrying next tick", self.source.name)
                elif time.time() - logged_at >= TICKER_LOG_EVERY_S:  # the worker says it too, every attempt
                    logged_at = time.time()
                    logger.warning(
                        "%s: planning windows failed for %.0fs, state store unavailable (%s); retrying every tick",
                        self.source.name,
                        time.time() - failing_since,
                        _first_line(exc),
                    )
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
        """Execute the next pending window; False when there is none.

        A window already published but not logged (the store failed) is logged first: the next one
        is not started before it, so windows stay logged in order and none is published twice.
        """
        if self._unlogged is None:
            window = self.state.next_window(self.source.name, WAVE)
            if window is None:
                return False
            self._unlogged = publish_window(self._context(), window)
        log = log_window(self._context(), self._unlogged)
        self._unlogged = None
        self.health.unlogged_windows = 0
        self.health.windows_done += 1
        self.health.rows_read += log.rows_read
        self.health.rows_dead_lettered += log.rows_dead_lettered
        self.health.last_window_end = log.window_end
        self.health.last_window_at = time.time()
        return True

    def worker(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                if not self.work_once():
                    self._wake.wait(self.window_ms / 1000)
                    self._wake.clear()
                if self.health.consecutive_failures:
                    logger.info(
                        "%s: collecting again after %d failed attempts",
                        self.source.name,
                        self.health.consecutive_failures,
                    )
                self.health.consecutive_failures = 0
                self.health.last_error = None
                backoff = 0.5
            except (PublishError, KafkaError) as exc:
                self._fail(f"Kafka unavailable, windows stay queued: {exc}", backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception as exc:
                if store_unavailable(exc):
                    self.health.unlogged_windows = 1 if self._unlogged else 0
                    waiting = "; 1 published window waits for its log row" if self._unlogged else ""
                    self._fail(f"state store unavailable, collection paused{waiting}: {_first_line(exc)}", backoff)
                    backoff = min(backoff * 2, MAX_STORE_BACKOFF_S)
                else:  # a failing source read: retry the same window later
                    logger.exception("%s: window failed", self.source.name)
                    self._fail(f"{type(exc).__name__}: {exc}", backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
            finally:
                self._update_pending()
        if self._unlogged is not None:
            # Still pending in the store's queue: the next start collects it again (read once downstream).
            logger.warning(
                "%s: stopping with window (%d, %d] published but not logged; it is collected again at the next start",
                self.source.name,
                self._unlogged.window.start_ms,
                self._unlogged.window.end_ms,
            )
        self.close()

    def _update_pending(self) -> None:
        try:
            self.health.pending_windows = self.state.pending_count(self.source.name, WAVE)
        except Exception as exc:  # the count is for the heartbeat; the worker must go on
            if not store_unavailable(exc):
                logger.exception("%s: counting pending windows failed", self.source.name)
        self.health.updated_at = time.time()

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


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line: a SQLAlchemy error's text repeats the statement and its parameters."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


class IngestService:
    def __init__(self, settings: Settings, runners: list[SourceRunner], stop: threading.Event) -> None:
        self.settings, self.runners, self.stop = settings, runners, stop
        self.heartbeat_file = settings.run_dir / "ingest" / "heartbeat.json"

    def write_heartbeat(self) -> None:
        write_heartbeat(
            self.heartbeat_file, {"at": time.time(), "sources": [dict(r.health.__dict__) for r in self.runners]}
        )

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
