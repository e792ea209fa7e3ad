"""What a check found on one partition, from a suite run and the profile it judged."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rtdp_dagster.config import QualityConfig
from rtdp_dagster.quality.gx_runner import SuiteRun
from rtdp_dagster.quality.suites import Suite


@dataclass
class CheckOutcome:
    asset: str
    check: str
    day: str
    passed: bool
    severity: str
    # Rows (points, buckets, missing points; failed expectations for the schema) behind the failure.
    failing_rows: int
    # Series (profile rows) failing; 0 for table-level checks.
    failing_series: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    suite: str = ""
    suite_version: str = ""
    docs_page: str | None = None


def docs_dir(quality: QualityConfig, run_dir: Path) -> Path:
    configured = quality.data_docs_dir
    return Path(configured) if configured else run_dir / "gx_data_docs"


def iso_ms(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """JSON-friendly scalars (numpy types and NaN out)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def schema_outcome(run: SuiteRun, suite: Suite, asset: str, day: str, severity: str) -> CheckOutcome:
    failed = [e for e in run.expectations if not e.success]
    sample = [{"expectation": e.type, "observed": str(e.result.get("observed_value", e.error))[:200]} for e in failed]
    return CheckOutcome(
        asset,
        "schema",
        day,
        run.success,
        severity,
        len(failed),
        sample=sample,
        suite=suite.name,
        suite_version=suite.version,
        docs_page=run.docs_page,
    )


def profile_outcome(
    run: SuiteRun,
    suite: Suite,
    profile: pd.DataFrame,
    asset: str,
    check: str,
    day: str,
    severity: str,
    sample_columns: list[str],
    sample_rows: int,
) -> CheckOutcome:
    """A check judged by GX on per-series profile rows: failing series, failing-row count, a sample."""
    results = run.for_check(check)
    passed = all(e.success for e in results)
    failing = pd.Series(False, index=profile.index)
    mine = [e for e in suite.expectations if e.check == check]
    for expectation in mine:
        column = profile[expectation.kwargs["column"]]
        low, high = expectation.kwargs.get("min_value"), expectation.kwargs.get("max_value")
        if low is not None:
            failing |= (column < low).fillna(False)
        if high is not None:
            failing |= (column > high).fillna(False)
    # The first count column of a check counts its failing rows (points, buckets, missing points).
    count_column = next(e.count_column for e in mine if e.count_column)
    counts = profile[count_column].fillna(0).astype("int64")
    failing_rows = int(counts[failing].sum())
    rows = profile[failing].assign(_count=counts[failing]).sort_values("_count", ascending=False)
    sample = [
        {column: _plain(row[column]) for column in sample_columns if column in row}
        for _, row in rows.head(sample_rows).iterrows()
    ]
    errors = [e.error for e in results if e.error]
    details = {"errors": errors} if errors else {}
    return CheckOutcome(
        asset,
        check,
        day,
        passed,
        severity,
        failing_rows,
        int(failing.sum()),
        sample,
        details,
        suite.name,
        suite.version,
        run.docs_page,
    )
