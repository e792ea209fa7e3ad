"""The quality checks by asset, and their default severities (configuration ``quality.severities``).

Kept free of heavy imports: rtdp_dagster.config validates the severity keys against it.
"""

from typing import Literal

Severity = Literal["WARN", "ERROR"]

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
