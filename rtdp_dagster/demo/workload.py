"""The demo's configuration: three workloads at once, short catch-up waves, every service on.

- ``nab_replay``: the NAB AWS CloudWatch series (if the folder is there) shifted to end now, with
  ``history_days`` of their past collected at the first start and a late tail for waves 2 and 3;
  the past starts after the files' last real outage (one series goes 20 minutes without a reading 39 h
  before its end), which the completeness check would rightly report on every demo;
- ``synthetic_fleet``: the seeded fleet with late, duplicate, corrected, retracted and malformed
  points, also with its recent past;
- ``platform_metrics``: ``/metrics`` of the platform's own VictoriaMetrics instances.
Waves 2 and 3 run every two and four minutes with offsets of one and three minutes, so late
points are caught while one watches (production keeps five minutes and one hour).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rtdp_dagster.config import CONFIG_ENV, DEFAULT_CONFIG_FILE, Settings
from rtdp_dagster.config import merge as merge_config

WAVES = {"window_s": 10.0, "max_window_s": 3600.0, "wave2_offset_s": 60.0, "wave3_offset_s": 180.0}
# Readiness delays: most points at once, a few late by 15 s to 2.5 min (waves 2 and 3 catch them).
LATENESS = {"jitter_s": 2.0, "late_share": 0.05, "late_min_s": 15.0, "late_max_s": 150.0}
PLATFORM_METRICS = (
    "process_resident_memory_bytes|process_cpu_seconds_total|vm_rows_inserted_total|vm_http_requests_total"
)


def outage_free_s(directory: Path, file_glob: str, gap_factor: float) -> float | None:
    """How far back from their ends all files are free of gaps (a step over gap_factor times the file's
    median step), measured to the middle of the latest gap; None when no file has one."""
    from rtdp_dagster.collection.sources.csv_replay import load_series
    from rtdp_dagster.config.sources import ReadinessDelayConfig

    free_ms: int | None = None
    for path in sorted(directory.glob(file_glob)):
        times = load_series(path, 0, ReadinessDelayConfig(), anchor_ms=None).timestamps_ms
        if times.size < 2:
            continue
        steps = np.diff(times)
        gaps = np.flatnonzero(steps > gap_factor * np.median(steps))
        if gaps.size:
            middle = (int(times[gaps[-1]]) + int(times[gaps[-1] + 1])) // 2
            tail_ms = int(times[-1]) - middle
            free_ms = tail_ms if free_ms is None else min(free_ms, tail_ms)
    return None if free_ms is None else free_ms / 1000


def _sources(settings: Settings, anchor_ms: int, history_days: float, small: bool) -> list[dict[str, Any]]:
    history_s = history_days * 86_400
    sources: list[dict[str, Any]] = []
    if settings.nab_data_dir.is_dir():
        free_s = outage_free_s(settings.nab_data_dir, "*.csv", settings.quality.gap_factor)
        sources.append(
            {
                "kind": "csv_replay",
                "name": "nab_replay",
                "namespace": "cloudwatch.aws.nab.metrics.v1.0.0",
                "shift_to_now": True,
                "anchor_ms": anchor_ms,
                "delay": LATENESS,
                "waves": {**WAVES, "history_s": min(history_s, free_s or history_s)},
            }
        )
    sources.append(
        {
            "kind": "synthetic",
            "name": "synthetic_fleet",
            "namespace": "synthetic.local.fleet.metrics.v1.0.0",
            "cadence_s": 60.0 if small else 10.0,
            "lateness": LATENESS,
            "duplicate_rate": 0.01,
            "correction_rate": 0.005,
            "retraction_rate": 0.002,
            "malformed": {"non_numeric_value": 0.001, "nan_value": 0.001, "invalid_metric": 0.001},
            "waves": {**WAVES, "history_s": history_s},
        }
    )
    for role, instance in (
        ("realtime", settings.stack.victoria_metrics.realtime),
        ("history", settings.stack.victoria_metrics.history),
    ):
        sources.append(
            {
                "kind": "prometheus",
                "name": f"platform_metrics_{role}",
                "namespace": f"prometheus.local.vm_{role}.metrics.v1.0.0",
                "url": f"http://{settings.stack.bind_host}:{instance.http_port}/metrics",
                "allow": PLATFORM_METRICS,
                "metric_prefix": "platform.",
                "extra_tags": {"service": f"vm-{role}", "host": settings.stack.bind_host.replace(":", "_")},
                "waves": {**WAVES, "window_s": 15.0},
            }
        )
    return sources


def demo_overrides(settings: Settings, anchor_ms: int, history_days: float, small: bool) -> dict[str, Any]:
    return {
        "collection": {
            "sources": _sources(settings, anchor_ms, history_days, small),
            "wave2_cron": "*/2 * * * *",
            "wave3_cron": "*/4 * * * *",
        },
        "stack": {name: {"enabled": True} for name in ("stream", "ingest", "serve", "dagster")},
    }


def write_demo_config(settings: Settings, path: Path, anchor_ms: int, history_days: float, small: bool) -> Path:
    """The user's own configuration file (if any) with the demo's workload on top."""
    own = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)
    base = yaml.safe_load(own.read_text()) if own.is_file() else {}
    config = merge_config(base or {}, demo_overrides(settings, anchor_ms, history_days, small))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
