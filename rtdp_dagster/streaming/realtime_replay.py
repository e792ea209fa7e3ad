"""Which points of a micro-batch that runs again the realtime TSDB already holds.

A batch runs again when its bronze write failed after its realtime put had begun (a full disk, a
killed driver): the put is not part of the Delta commit, and VictoriaMetrics keeps every sample it
is sent, so putting the batch again would double its points. The put journal
(``realtime_state.mark_put_begun``) says which batch that may be; for that batch only, the writer
reads back the points' series (one export per metric and time span) and puts only what is missing.
"""

from __future__ import annotations

import json

import numpy as np

from rtdp_dagster.tsdb.query import force_flush, holds_value, stored_values

# Points further apart than this are read back in separate exports (a re-read wave's old points
# in the same batch must not widen one export to hours of every series).
SPAN_GAP_MS = 60_000


def time_spans(timestamps: np.ndarray, gap_ms: int = SPAN_GAP_MS) -> list[np.ndarray]:
    """Positions into timestamps grouped into runs whose consecutive (sorted) times are within gap_ms."""
    if not len(timestamps):
        return []
    order = np.argsort(timestamps, kind="stable")
    breaks = np.flatnonzero(np.diff(timestamps[order]) > gap_ms) + 1
    return np.split(order, breaks)


def already_held(query_url: str, points_json: np.ndarray, timeout_s: float) -> np.ndarray:
    """Per encoded put point (OpenTSDB JSON), whether the TSDB holds that series, timestamp and value."""
    points = [json.loads(text) for text in points_json]
    held = np.zeros(len(points), dtype=bool)
    if not points:
        return held
    force_flush(query_url, timeout_s)  # what the first run put seconds ago may still be buffered
    metrics = np.array([point["metric"] for point in points], dtype=object)
    timestamps = np.array([int(point["timestamp"]) for point in points], dtype=np.int64)
    for metric in np.unique(metrics):
        of_metric = np.flatnonzero(metrics == metric)
        for span in time_spans(timestamps[of_metric]):
            positions = of_metric[span]
            low, high = int(timestamps[positions].min()), int(timestamps[positions].max())
            stored = stored_values(query_url, str(metric), low, high, timeout_s)
            for position in positions:
                point = points[position]
                key = (tuple(sorted(point["tags"].items())), int(point["timestamp"]))
                held[position] = holds_value(stored.get(key), float(point["value"]))
    return held
