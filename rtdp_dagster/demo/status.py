"""The demo's live status line while it works: points in, bronze rows, Kafka lag, backfill progress and ETA.

Everything comes from what the services already publish: the stream's heartbeat (totals since it
started, and the Kafka lag of its last micro-batch) and the backfill's progress as the demo polls it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtdp_dagster.demo.dagster_api import BackfillProgress
from rtdp_dagster.heartbeat import STREAM_BRONZE, read_heartbeat

STATUS_EVERY_S = 20.0


@dataclass
class BackfillWatch:
    """The backfill's latest progress and when it started, for its ETA."""

    started: float = field(default_factory=time.monotonic)
    progress: BackfillProgress | None = None

    def eta_s(self, now: float) -> float | None:
        """Seconds left at the pace so far; None before the first partition is done."""
        progress = self.progress
        if progress is None or progress.materialized == 0 or progress.done:
            return None
        left = progress.targeted - progress.materialized - progress.failed
        return max(0.0, left * (now - self.started) / progress.materialized)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def bronze_rows(beat: dict) -> int:
    """Points the stream has landed in bronze since it started (one row per point, v1 or v2)."""
    return int(beat.get("totals", {}).get(f"{STREAM_BRONZE}.bronze_rows", 0))


def status_line(
    beat: dict | None, previous: tuple[float, int] | None, backfill: BackfillWatch | None, now: float
) -> str:
    """One line from a heartbeat, the (time, bronze rows) of the previous line and the backfill's watch."""
    parts: list[str] = []
    if beat is None:
        parts.append("stream: no heartbeat yet")
    else:
        rows = bronze_rows(beat)
        if previous is not None and beat.get("at", 0) > previous[0]:
            parts.append(f"in {max(0, rows - previous[1]) / (beat['at'] - previous[0]):,.0f} points/s")
        parts.append(f"bronze {rows:,} rows")
        latest = beat.get("queries", {}).get(STREAM_BRONZE)
        if latest is not None:
            parts.append(f"Kafka lag {int(latest.get('kafka_lag', 0)):,} records")
    if backfill is not None and backfill.progress is not None:
        progress = backfill.progress
        text = f"backfill {progress.materialized}/{progress.targeted} partitions"
        if progress.failed:
            text += f", {progress.failed} failed"
        eta = backfill.eta_s(now)
        parts.append(text + (f", ETA {_duration(eta)}" if eta is not None else ""))
    return "status: " + " · ".join(parts)


class StatusLine:
    """Prints the status line every ``every_s`` from a daemon thread until stopped."""

    def __init__(self, heartbeat_file: Path, log: Callable[[str], None], every_s: float = STATUS_EVERY_S) -> None:
        self.heartbeat_file = heartbeat_file
        self.log = log
        self.every_s = every_s
        self.backfill: BackfillWatch | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtdp-demo-status", daemon=True)

    def _run(self) -> None:
        previous: tuple[float, int] | None = None
        while not self._stop.wait(self.every_s):
            beat = read_heartbeat(self.heartbeat_file)
            self.log(status_line(beat, previous, self.backfill, time.monotonic()))
            if beat is not None:
                previous = (float(beat.get("at", 0)), bronze_rows(beat))

    def __enter__(self) -> StatusLine:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
