"""CSV replay over the real NAB AWS CloudWatch files: shifting, readiness, determinism."""

from __future__ import annotations

import csv
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from rtdp_dagster.collection.sources.csv_replay import CsvReplaySource, nab_series
from rtdp_dagster.config.sources import CsvReplaySourceConfig, ReadinessDelayConfig
from rtdp_dagster.envelope.records import RawRecord

PROJECT_ROOT = Path(__file__).resolve().parents[3]
NAB_DIR = Path(os.environ.get("RTDP_NAB_DATA_DIR", PROJECT_ROOT.parent / "shared/data/nab/realAWSCloudwatch"))
needs_nab = pytest.mark.skipif(
    not NAB_DIR.is_dir(), reason=f"NAB realAWSCloudwatch data not found at {NAB_DIR} (set RTDP_NAB_DATA_DIR)"
)
ANCHOR_MS = 1_800_000_030_123  # not on a minute: the last point lands on the minute before
MINUTE_MS = 60_000
LATE = ReadinessDelayConfig(jitter_s=5, late_share=0.2, late_min_s=30, late_max_s=3000)


def replay(directory: Path = NAB_DIR, **options: object) -> CsvReplaySource:
    config = CsvReplaySourceConfig.model_validate(
        {"name": "nab", "namespace": "cloudwatch.aws01.nab.realawscloudwatch.v1.0.0", **options}
    )
    return CsvReplaySource(config, directory)


def original_times(path: Path) -> list[int]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return sorted(int(datetime.fromisoformat(row[0]).replace(tzinfo=UTC).timestamp() * 1000) for row in rows)


def test_file_names_map_to_metric_and_tags() -> None:
    assert nab_series("ec2_cpu_utilization_24ae8d.csv") == (
        "cloudwatch.ec2.cpu_utilization",
        {"service": "ec2", "instance": "24ae8d"},
    )
    assert nab_series("iio_us-east-1_i-a2eb1cd9_NetworkIn.csv") == (
        "cloudwatch.iio.network_in",
        {"service": "iio", "region": "us-east-1", "instance": "i-a2eb1cd9"},
    )
    assert nab_series("grok_asg_anomaly.csv") == ("cloudwatch.grok.asg_anomaly", {"service": "grok"})


@needs_nab
def test_shift_preserves_count_and_spacing() -> None:
    source = replay(shift_to_now=True, anchor_ms=ANCHOR_MS)
    series = {item.file: item for item in source.series()}
    assert sorted(series) == sorted(path.name for path in NAB_DIR.glob("*.csv"))
    anchor_minute = ANCHOR_MS // MINUTE_MS * MINUTE_MS
    for name, item in series.items():
        original = original_times(NAB_DIR / name)
        shifted = item.timestamps_ms.tolist()
        assert len(shifted) == len(original), name
        assert shifted[-1] == anchor_minute, name
        assert np.array_equal(np.diff(shifted), np.diff(original)), name
        assert all(ts % 1000 == 0 for ts in shifted), name
    everything = list(source.read_window(0, anchor_minute, now_ms=anchor_minute))
    assert len(everything) == sum(len(item.timestamps_ms) for item in series.values())


@needs_nab
def test_readiness_hides_late_rows_until_their_delay_has_passed() -> None:
    source = replay(shift_to_now=True, anchor_ms=ANCHOR_MS, seed=3, delay=LATE.model_dump())
    anchor_minute = ANCHOR_MS // MINUTE_MS * MINUTE_MS
    span_ms = 8 * 3_600_000
    # Rows of the last 8 hours of every file, counted from the CSV files themselves.
    expected = 0
    for path in NAB_DIR.glob("*.csv"):
        times = original_times(path)
        expected += sum(1 for ts in times if ts > times[-1] - span_ms)
    # Each row read alone, 10 s after its time and an hour after it.
    times = sorted(
        {ts for item in source.series() for ts in item.timestamps_ms.tolist() if ts > anchor_minute - span_ms}
    )
    at_once = an_hour_later = 0
    for ts in times:
        visible_at_once = list(source.read_window(ts - 1, ts, now_ms=ts + 10_000))
        visible_later = list(source.read_window(ts - 1, ts, now_ms=ts + 3_600_000))
        assert set(map(repr, visible_at_once)) <= set(map(repr, visible_later))
        at_once += len(visible_at_once)
        an_hour_later += len(visible_later)
    # Late rows (20 %, 30 s to 50 min) are absent at once; after an hour every row is there.
    assert an_hour_later == expected
    assert 0.15 < (an_hour_later - at_once) / expected < 0.25


@needs_nab
def test_replay_is_deterministic_across_instances() -> None:
    def window(seed: int) -> list[RawRecord]:
        source = replay(shift_to_now=True, anchor_ms=ANCHOR_MS, seed=seed, delay=LATE.model_dump())
        end = ANCHOR_MS // MINUTE_MS * MINUTE_MS
        # now cuts through the delays: which rows are visible depends on every row's draw.
        return list(source.read_window(end - 6 * 3_600_000, end, now_ms=end - 20 * MINUTE_MS))

    first, again, other_seed = window(1), window(1), window(2)
    assert first == again
    assert [r.raw for r in first] == [r.raw for r in again]
    assert first != other_seed


def test_unreadable_rows_are_yielded_with_what_could_be_read(tmp_path: Path) -> None:
    (tmp_path / "ec2_cpu_utilization_abcdef.csv").write_text(
        "timestamp,value\n2024-01-01 00:00:00,1.5\n2024-01-01 00:05:00,oops\nnot-a-time,2.5\n2024-01-01 00:10:00,3\n"
    )
    source = replay(tmp_path)
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    records = list(source.read_window(start - 1, start + 10 * MINUTE_MS, now_ms=start + 3_600_000))
    assert [(r.ts_ms, r.value) for r in records] == [
        (start, 1.5),
        (start + 5 * MINUTE_MS, "oops"),
        (start + 10 * MINUTE_MS, 3.0),
        # The row without a readable time belongs to the window of the row before it.
        (None, 2.5),
    ]
    assert records[-1].raw == {"file": "ec2_cpu_utilization_abcdef.csv", "line": 4, "row": "not-a-time,2.5"}
    # ...and only to that window.
    assert all(r.ts_ms is not None for r in source.read_window(start + 5 * MINUTE_MS, start + 3_600_000, 2**62))


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    source = replay(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="absent"):
        list(source.read_window(0, 1, 1))
