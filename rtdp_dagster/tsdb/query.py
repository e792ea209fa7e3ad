"""Reading raw samples back from VictoriaMetrics (exact values and millisecond timestamps)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import requests

# VictoriaMetrics keeps about 12 significant digits: a stored value equal to that precision is the point.
_REL_TOL = 1e-9


def _selector(metric: str, tags: Mapping[str, str]) -> str:
    # Prometheus selector syntax; label values are JSON-escaped string literals.
    labels = [f"__name__={json.dumps(metric)}"] + [f"{key}={json.dumps(value)}" for key, value in sorted(tags.items())]
    return "{" + ",".join(labels) + "}"


def force_flush(base_url: str, timeout_s: float = 10.0) -> None:
    """Make every point received so far searchable now.

    VictoriaMetrics buffers new points for ~2 s, and a lookup of a series that is not searchable
    yet is cached as empty for ~10 s; flushing before the first read-back avoids both.
    """
    requests.get(f"{base_url.rstrip('/')}/internal/force_flush", timeout=timeout_s).raise_for_status()


def export_series(
    base_url: str,
    metric: str,
    tags: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    start_ms: int = 0,
    end_ms: int | None = None,
    stored: bool = False,
) -> list[dict]:
    """Every raw sample of the matching series (between start_ms and end_ms, both included, when
    given): [{"tags": {...}, "points": [(ts_ms, value), ...]}], as reads get them, or with ``stored``
    as the TSDB holds them (also the duplicates its deduplication hides from reads until a merge
    drops them; a series may then come in several records)."""
    params = {"match[]": _selector(metric, tags or {}), "start": f"{start_ms / 1000:.3f}"}
    if end_ms is not None:
        params["end"] = f"{end_ms / 1000:.3f}"
    if stored:
        params["reduce_mem_usage"] = "1"  # VictoriaMetrics: skip the deduplication of the export
    response = requests.get(f"{base_url.rstrip('/')}/api/v1/export", params=params, timeout=timeout_s)
    response.raise_for_status()
    series = []
    for line in response.text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        labels = {key: value for key, value in record["metric"].items() if key != "__name__"}
        series.append({"tags": labels, "points": list(zip(record["timestamps"], record["values"], strict=True))})
    return series


def stored_values(
    base_url: str, metric: str, start_ms: int, end_ms: int, timeout_s: float = 10.0
) -> dict[tuple, list[float]]:
    """The metric's raw samples in the range by (sorted label items, timestamp ms): every value stored."""
    stored: dict[tuple, list[float]] = {}
    for series in export_series(base_url, metric, timeout_s=timeout_s, start_ms=start_ms, end_ms=end_ms):
        labels = tuple(sorted(series["tags"].items()))
        for ts, value in series["points"]:
            stored.setdefault((labels, int(ts)), []).append(float(value))
    return stored


def holds_value(values: list[float] | None, value: float) -> bool:
    """Whether one of the values stored for a timestamp is this value (to the TSDB's precision)."""
    return any(math.isclose(stored, value, rel_tol=_REL_TOL) for stored in values or ())


def count_points(base_url: str, metric: str, tags: Mapping[str, str] | None = None) -> int:
    return sum(len(series["points"]) for series in export_series(base_url, metric, tags))
