"""What the demo reports at the end: every layer's figures, read from the layers themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rtdp_dagster.config import Settings
from rtdp_dagster.text_table import format_table

TABLES = (
    "bronze",
    "quarantine",
    "silver",
    "rollup_1m",
    "rollup_1h",
    "rollup_1d",
    "rollup_1w",
    "rollup_1mo",
    "rollup_1y",
    "stream_progress",
)


@dataclass
class DemoSummary:
    waves: list[dict[str, Any]] = field(default_factory=list)
    late_caught: dict[str, int] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    # Neither passed nor failed when the summary was taken: not run, or still running.
    unsettled_checks: list[str] = field(default_factory=list)
    panels: dict[str, int] = field(default_factory=dict)
    panels_without_data: list[str] = field(default_factory=list)
    backfill: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collection_figures(settings: Settings) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per source and wave from the collection log; the late points waves 2 and 3 caught."""
    from rtdp_dagster.collection.state import CollectionState

    state = CollectionState(settings.collection.state_url)
    try:
        rows = [{k: (int(v) if isinstance(v, int | float) else v) for k, v in row.items()} for row in state.summary()]
    finally:
        state.dispose()
    late = {f"wave{wave}": sum(int(r["rows_new"] or 0) for r in rows if r["wave"] == wave) for wave in (2, 3)}
    return rows, late


def table_counts(settings: Settings) -> dict[str, int]:
    from rtdp_dagster.spark.session import connect

    spark = connect(settings)
    counts = {}
    for name in TABLES:
        try:
            counts[name] = spark.read.format("delta").load(settings.delta.table_path(name)).count()
        except Exception:  # a table no layer has written yet (Spark Connect raises its own error types)
            counts[name] = 0
    return counts


def format_summary(summary: DemoSummary) -> str:
    waves = format_table(
        ("SOURCE", "WAVE", "WINDOWS", "READ", "NEW", "DEAD-LETTERED", "PENDING"),
        [
            (r["source"], r["wave"], r["windows"], r["rows_read"], r["rows_new"], r["rows_dead_lettered"], r["pending"])
            for r in summary.waves
        ],
    )
    tables = format_table(("TABLE", "ROWS"), list(summary.table_rows.items()))
    parts = [
        "Collection (points per source and wave)",
        waves,
        f"Late points caught: wave 2 {summary.late_caught.get('wave2', 0)}, "
        f"wave 3 {summary.late_caught.get('wave3', 0)}",
        "",
        "Delta tables",
        tables,
        "",
        f"Backfill: {summary.backfill.get('status', '-')} ({summary.backfill.get('materialized', 0)} of "
        f"{summary.backfill.get('targeted', 0)} asset partitions)",
        "Asset checks: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary.checks.items())),
    ]
    if summary.failed_checks:
        parts.append("  failed: " + ", ".join(summary.failed_checks))
    if summary.unsettled_checks:
        parts.append("  not passed yet: " + ", ".join(summary.unsettled_checks))
    parts.append(f"Dashboard panels with data: {summary.panels.get('data', 0)} of {summary.panels.get('total', 0)}")
    if summary.panels_without_data:
        parts.append("  without data: " + ", ".join(summary.panels_without_data))
    parts += ["", "URLs", format_table(("WHAT", "URL"), list(summary.urls.items()))]
    return "\n".join(parts)
