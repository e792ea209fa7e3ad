"""Data-quality rules: the checks by asset with their default severities, metric kinds, cadence, freshness."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from rtdp_dagster.config.base import ConfigModel
from rtdp_dagster.envelope.metric_kinds import MetricKinds

Severity = Literal["WARN", "ERROR"]

# The quality checks by asset: `quality.severities` may name only these.
CHECKS: dict[str, tuple[str, ...]] = {
    "bronze": ("schema", "keys_not_null", "in_partition_day", "value_range"),
    "silver": (
        "schema",
        "keys_not_null",
        "in_partition_day",
        "point_key_unique",
        "series_time_unique",
        "value_range",
        "counter_monotonic",
        "completeness",
        "reconciliation",
    ),
    "rollup_1m": ("valid",),
    "rollup_1h": ("valid", "matches_finer"),
    "rollup_1d": ("valid", "matches_finer", "matches_silver"),
}

# A counter glitch or a gap degrades a day without making its numbers wrong: a warning, not a block.
DEFAULT_SEVERITIES: dict[str, dict[str, Severity]] = {
    asset: {check: "WARN" if check in ("counter_monotonic", "completeness") else "ERROR" for check in checks}
    for asset, checks in CHECKS.items()
}


class CadenceOverride(ConfigModel):
    """A fixed expected cadence for the metrics matching a glob (instead of learning it)."""

    pattern: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._/*?-]+$")
    cadence_s: float = Field(gt=0)


_DAILY_CRON = r"^([0-5]?[0-9]) ([01]?[0-9]|2[0-3]) \* \* \*$"


def _after_midnight(cron: str) -> str:
    """A deadline's day must have room for runs: Dagster's cron freshness policy counts a day's
    updates from midnight to the deadline and refuses a window under a minute."""
    minute, hour = (int(part) for part in cron.split()[:2])
    if (hour, minute) == (0, 0):
        raise ValueError("a daily deadline at 00:00 leaves the day no time for its runs; use 00:01 or later")
    return cron


DailyDeadline = Annotated[str, Field(pattern=_DAILY_CRON), AfterValidator(_after_midnight)]


class FreshnessConfig(ConfigModel):
    """By when each asset must be updated (UTC cron deadlines); a late asset fails its freshness check."""

    # Daily deadlines "M H * * *" (UTC).
    silver_deadline_cron: DailyDeadline = "30 1 * * *"
    rollups_deadline_cron: DailyDeadline = "0 2 * * *"
    coarse_rollups_deadline_cron: DailyDeadline = "0 3 * * *"
    collection_log_max_age_s: float = Field(default=900.0, gt=0)


class QualityConfig(ConfigModel):
    """Data-quality rules: metric kinds (also the stream's validation), completeness, severities, freshness."""

    metric_kinds: MetricKinds = Field(default_factory=MetricKinds)
    # Expected cadence: the first matching override, else learned per series (median step) from silver
    # of the day and the days before it, else the default.
    cadence_overrides: list[CadenceOverride] = Field(default_factory=list)
    cadence_history_days: int = Field(default=7, ge=0)
    default_cadence_s: float = Field(default=10.0, gt=0)
    # A step longer than gap_factor cadences is a gap; a series missing more than this share fails.
    gap_factor: float = Field(default=3.0, gt=1)
    max_missing_share: float = Field(default=0.05, ge=0, le=1)
    # A counter step down to at most this fraction of the previous value is a reset, not a defect.
    counter_reset_max_fraction: float = Field(default=0.1, ge=0, lt=1)
    # Relative slack for min <= avg <= max (avg is sum/count over 12-decimal rounded values).
    avg_tolerance: float = Field(default=1e-9, ge=0)
    # asset -> check -> WARN or ERROR (e.g. RTDP_QUALITY__SEVERITIES__SILVER__COMPLETENESS=ERROR); ERROR
    # failures on silver keep the day out of the rollups.
    severities: dict[str, dict[str, Severity]] = Field(default_factory=dict)
    sample_rows: int = Field(default=5, ge=1, le=100)
    # Great Expectations Data Docs (HTML). Empty: <run_dir>/gx_data_docs.
    data_docs_dir: str = ""
    freshness: FreshnessConfig = Field(default_factory=FreshnessConfig)

    @model_validator(mode="after")
    def _known_checks(self) -> QualityConfig:
        unknown = [
            f"{asset}.{check}"
            for asset, checks in self.severities.items()
            for check in checks
            if check not in DEFAULT_SEVERITIES.get(asset, {})
        ]
        if unknown:
            known = [f"{asset}.{check}" for asset, checks in DEFAULT_SEVERITIES.items() for check in checks]
            raise ValueError(f"severities name unknown checks {unknown}; known: {', '.join(known)}")
        self.severities = {
            asset: {**checks, **self.severities.get(asset, {})} for asset, checks in DEFAULT_SEVERITIES.items()
        }
        return self
