"""Whether the TSDB's process restarted between two looks, from the start time it reports.

A VictoriaMetrics killed and back between two writes fails none of them, yet loses what it had
acknowledged in the seconds before (it holds accepted points in memory for up to
``-inmemoryDataFlushInterval``). Its ``/metrics`` page gives its start time; a new one means a
restart. A TSDB that reports none (another OpenTSDB-protocol server) is never taken as restarted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import requests

# VictoriaMetrics' own gauge first, the Prometheus client convention after it.
_START_LINES = (b"vm_app_start_timestamp ", b"process_start_time_seconds ")


def start_time(session: requests.Session, base_url: str, timeout_s: float) -> float | None:
    """The TSDB process's start time (Unix seconds), or None when it cannot be read now."""
    try:
        response = session.get(f"{base_url.rstrip('/')}/metrics", timeout=timeout_s)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    return parse_start_time(response.content)


def parse_start_time(metrics: bytes) -> float | None:
    """The start time in a Prometheus text page, or None when it has none."""
    found: dict[bytes, float] = {}
    for line in metrics.splitlines():
        for prefix in _START_LINES:
            if line.startswith(prefix):
                with contextlib.suppress(ValueError):  # a malformed line counts as none
                    found[prefix] = float(line[len(prefix) :])
    return next((found[prefix] for prefix in _START_LINES if prefix in found), None)


class RestartWatch:
    """Compares the start time read now with the one read last, and remembers when that was.

    ``known`` and ``known_at`` (Unix seconds) carry the last reading across a restart of the
    watcher itself, so a TSDB that restarted while the watcher was away is seen too.
    """

    def __init__(
        self,
        read_start_time: Callable[[], float | None],
        clock: Callable[[], float] = time.time,
        known: float | None = None,
        known_at: float | None = None,
    ) -> None:
        self._read, self._clock = read_start_time, clock
        self.known, self.known_at = known, known_at

    def restarted_after(self) -> float | None:
        """None when no restart is seen; else when the old start time was last read: the process
        that answered then was killed after it. A look that reads none (the TSDB is down) changes
        nothing: the write that fails then is recorded on its own."""
        seen, now = self._read(), self._clock()
        if seen is None:
            return None
        before, before_at = self.known, self.known_at
        self.known, self.known_at = seen, now
        if before is None or seen == before:
            return None
        return before_at if before_at is not None else 0.0  # when unknown: everything remembered
