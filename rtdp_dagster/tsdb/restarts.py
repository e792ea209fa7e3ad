"""Whether the TSDB's process restarted between two looks, from the start time it reports.

A VictoriaMetrics killed and back between two writes fails none of them, yet loses what it had
acknowledged in the seconds before (it holds accepted points in memory for up to
``-inmemoryDataFlushInterval``). Its ``/metrics`` page gives its start time; a new one means a
restart. A TSDB that reports none (another OpenTSDB-protocol server) is never taken as restarted.
"""

from __future__ import annotations

import contextlib
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
    """Compares the start time read now with the one read at the last look."""

    def __init__(self, read_start_time: Callable[[], float | None]) -> None:
        self._read = read_start_time
        self._known: float | None = None

    def restarted(self) -> bool:
        """True when the start time changed since the last look that read one; a look that reads none
        (the TSDB is down) changes nothing: the write that fails then is recorded on its own."""
        seen = self._read()
        if seen is None:
            return False
        before, self._known = self._known, seen
        return before is not None and seen != before
