"""The fault drills' bookkeeping without services: rollups in pandas, their comparison, "healthy again"."""

from __future__ import annotations

import pandas as pd

from bench.drills import Sample, Watcher, compare_rollups, pandas_rollup, source_shape


def test_source_shape_makes_at_least_the_rate() -> None:
    hosts, sites = source_shape(10_000)
    assert hosts * sites * 7 >= 10_000 and (hosts * sites * 7 - 10_000) < sites * 7
    assert source_shape(504) == (72, 1)


def test_pandas_rollup_and_comparison_find_every_difference() -> None:
    points = pd.DataFrame(
        {
            "metric": ["m"] * 4,
            "host": ["h1", "h1", "h1", "h2"],
            "ts": [1_000, 59_000, 61_000, 1_000],
            "value": [1.0, 3.0, 5.0, 7.0],
        }
    )
    expected = pandas_rollup(points, 60_000)
    assert expected.to_dict("records") == [
        {"metric": "m", "host": "h1", "bucket_start": 0, "count": 2, "sum": 4.0, "min": 1.0, "max": 3.0},
        {"metric": "m", "host": "h1", "bucket_start": 60_000, "count": 1, "sum": 5.0, "min": 5.0, "max": 5.0},
        {"metric": "m", "host": "h2", "bucket_start": 0, "count": 1, "sum": 7.0, "min": 7.0, "max": 7.0},
    ]
    assert compare_rollups(expected, expected.copy()) == {"buckets": 3, "missing": 0, "extra": 0, "different": 0}
    actual = expected.iloc[1:].copy()
    actual.loc[1, "sum"] = 5.5
    extra = pd.DataFrame(
        [{"metric": "m", "host": "h3", "bucket_start": 0, "count": 1, "sum": 1.0, "min": 1.0, "max": 1.0}]
    )
    assert compare_rollups(expected, pd.concat([actual, extra])) == {
        "buckets": 3,
        "missing": 1,
        "extra": 1,
        "different": 1,
    }


def test_healthy_again_needs_every_service_and_the_stream_caught_up() -> None:
    watcher = Watcher.__new__(Watcher)
    watcher.samples = [
        Sample(at=100, all_healthy=True, unhealthy=[], produced=1_000, committed=1_000),
        Sample(at=110, all_healthy=False, unhealthy=["kafka-1"], produced=1_100, committed=1_000),
        Sample(at=130, all_healthy=True, unhealthy=[], produced=1_300, committed=1_050),  # lagging
        Sample(at=150, all_healthy=True, unhealthy=[], produced=1_500, committed=1_300),  # has what 15 s ago had
    ]
    assert watcher.healthy_again_at(fault_at=105) == 150
    assert watcher.healthy_again_at(fault_at=151) is None
