"""Check results and reconciliations as ``rtdp.dq.*`` metrics in the realtime TSDB (Grafana's operations view).

- ``rtdp.dq.check_status`` 1 pass / 0 fail, tags asset, check, severity;
- ``rtdp.dq.failing_rows``, tags asset, check;
- ``rtdp.dq.recon.<stage>`` the stage's count, ``rtdp.dq.recon.explained`` per reason and
  ``rtdp.dq.recon.unexplained``, tags stage (and reason) and day.

Points carry the time of the evaluation. Writing them never fails a check: a TSDB that is down
loses these figures only (the check results stay in Dagster), with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rtdp_dagster.quality.outcomes import CheckOutcome
from rtdp_dagster.quality.reconciliation import Reconciliation
from rtdp_dagster.tsdb.put import TsdbPoint, TsdbWriteError, http_put

logger = logging.getLogger("rtdp.quality")


def check_points(outcomes: Iterable[CheckOutcome], at_ms: int) -> list[TsdbPoint]:
    points = []
    for outcome in outcomes:
        tags = {"asset": outcome.asset, "check": outcome.check}
        points.append(
            TsdbPoint(
                "rtdp.dq.check_status", at_ms, 1.0 if outcome.passed else 0.0, {**tags, "severity": outcome.severity}
            )
        )
        points.append(TsdbPoint("rtdp.dq.failing_rows", at_ms, float(outcome.failing_rows), tags))
    return points


def reconciliation_points(reconciliation: Reconciliation, at_ms: int) -> list[TsdbPoint]:
    day = {"day": reconciliation.day}
    points = []
    for stage in reconciliation.stages:
        tags = {"stage": stage.name, **day}
        if stage.count is not None:
            points.append(TsdbPoint(f"rtdp.dq.recon.{stage.name}", at_ms, float(stage.count), tags))
        points.append(TsdbPoint("rtdp.dq.recon.unexplained", at_ms, float(stage.unexplained), tags))
        points += [
            TsdbPoint("rtdp.dq.recon.explained", at_ms, float(value), {**tags, "reason": reason})
            for reason, value in stage.explained.items()
        ]
    return points


def publish(put_http_url: str, points: list[TsdbPoint], timeout_s: float = 5.0) -> int:
    """Write the points; returns how many were written (0 when the TSDB could not take them)."""
    try:
        return http_put(put_http_url, points, timeout_s=timeout_s, attempts=2)
    except (TsdbWriteError, ValueError) as exc:
        logger.warning("rtdp.dq metrics not written: %s", exc)
        return 0
