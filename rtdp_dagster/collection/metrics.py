"""Per-window collection figures as `rtdp.collect.*` points in the realtime TSDB, for Grafana.

Best effort by design: a TSDB outage must not hold up collection, so a failed put is logged and
counted, and the collection log (the record of truth) still has every window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rtdp_dagster.collection.state import LogRow
from rtdp_dagster.config import TsdbEndpoint
from rtdp_dagster.tsdb.put import TsdbPoint, TsdbWriteError, http_put

logger = logging.getLogger(__name__)

FIGURES = ("rows_read", "rows_valid", "rows_new", "rows_dead_lettered", "duration_ms")


def log_points(row: LogRow) -> list[TsdbPoint]:
    tags = {"source": row.source, "wave": str(row.wave)}
    return [TsdbPoint(f"rtdp.collect.{name}", row.window_end, float(getattr(row, name)), tags) for name in FIGURES]


def tsdb_sink(endpoint: TsdbEndpoint, timeout_s: float = 2.0) -> Callable[[LogRow], None]:
    failures = 0

    def publish(row: LogRow) -> None:
        nonlocal failures
        try:
            http_put(endpoint.put_http_url, log_points(row), timeout_s=timeout_s, attempts=1)
        except (TsdbWriteError, ValueError) as exc:
            failures += 1
            logger.warning("collection metrics not written to %s (%d so far): %s", endpoint.url, failures, exc)

    return publish
