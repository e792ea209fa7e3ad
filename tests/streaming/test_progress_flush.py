"""The progress recorder publishes metrics at every flush and appends Delta rows at most every
``ROWS_EVERY_S``, and writes every row left at the final flush (pure logic: no Spark, no TSDB)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rtdp_dagster.config import load_settings
from rtdp_dagster.streaming import progress
from rtdp_dagster.streaming.progress import ProgressRecorder


@dataclass
class _Query:
    name: str = "stream"
    recentProgress: list[dict] = field(default_factory=list)  # as StreamingQuery names it

    def finish(self, batch_id: int) -> None:
        self.recentProgress.append(
            {"batchId": batch_id, "numInputRows": 10, "durationMs": {"addBatch": 5, "triggerExecution": 9}}
        )


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ProgressRecorder, list, list]:
    settings = load_settings(environ={**os.environ, "RTDP_RUN_DIR": str(tmp_path)})
    recorder = ProgressRecorder(settings, spark=None)  # type: ignore[arg-type]
    published: list[list[int]] = []
    appended: list[list[int]] = []
    monkeypatch.setattr(recorder, "_publish", lambda rows: published.append([row["batch_id"] for row in rows]))
    monkeypatch.setattr(recorder, "_append", lambda rows: appended.append([row["batch_id"] for row in rows]))
    return recorder, published, appended


def test_metrics_at_every_flush_delta_rows_at_most_every_interval(recorder, monkeypatch) -> None:
    recorder, published, appended = recorder
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    query = _Query()

    query.finish(0)
    recorder.poll([query])
    recorder.flush()
    assert published == [[0, 0]] and appended == [[0, 0]]  # one row per part; the first rows at once

    query.finish(1)
    recorder.poll([query])
    clock[0] += 5
    recorder.flush()
    assert published == [[0, 0], [1, 1]]
    assert appended == [[0, 0]]  # published, held for Delta

    query.finish(2)
    recorder.poll([query])
    clock[0] += progress.ROWS_EVERY_S
    recorder.flush()
    assert appended == [[0, 0], [1, 1, 2, 2]]

    query.finish(3)
    recorder.poll([query])
    recorder.flush(wait=True)  # the final flush writes whatever is left, whenever it comes
    assert appended[-1] == [3, 3]
    assert published[-1] == [3, 3]
    assert recorder.totals["bronze.num_input_rows"] == 40
