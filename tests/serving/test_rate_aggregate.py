"""Rate with counter options, and cross-series aggregation with OpenTSDB's interpolation rules."""

from __future__ import annotations

import numpy as np

from rtdp_dagster.serving.aggregate import Series, aggregate
from rtdp_dagster.serving.model import RateOptions
from rtdp_dagster.serving.rate import rate

T = np.array([0, 10_000, 20_000, 30_000], dtype=np.int64)


def test_rate_per_second_drops_the_first_point():
    times, values = rate(T, np.array([0.0, 10.0, 30.0, 30.0]), RateOptions())
    assert list(times) == [10_000, 20_000, 30_000] and list(values) == [1.0, 2.0, 0.0]


def test_counter_reset_counted_from_counter_max_or_dropped():
    counter = np.array([90.0, 95.0, 5.0, 15.0])
    _, wrapped = rate(T, counter, RateOptions(counter=True, counter_max=100.0))
    assert list(wrapped) == [0.5, 1.0, 1.0]
    _, reset_to_zero = rate(T, counter, RateOptions(counter=True, counter_max=1000.0, reset_value=5.0))
    assert list(reset_to_zero) == [0.5, 0.0, 1.0]
    times, dropped = rate(T, counter, RateOptions(counter=True, drop_resets=True))
    assert list(times) == [10_000, 30_000] and list(dropped) == [0.5, 1.0]


def test_sum_interpolates_inside_a_series_and_not_outside():
    a = Series({"host": "a", "dc": "x"}, np.array([0, 20_000], dtype=np.int64), np.array([0.0, 20.0]))
    b = Series({"host": "b", "dc": "x"}, np.array([10_000, 30_000], dtype=np.int64), np.array([1.0, 3.0]))
    (group,) = aggregate([a, b], "sum", ())
    assert list(group.timestamps) == [0, 10_000, 20_000, 30_000]
    # a at 10s is interpolated to 10; b at 20s to 2; a is absent after 20s and b before 10s.
    assert list(group.values) == [0.0, 11.0, 22.0, 3.0]
    assert group.tags == {"dc": "x"} and group.aggregate_tags == ["host"]
    (zim,) = aggregate([a, b], "zimsum", ())
    assert list(zim.values) == [0.0, 1.0, 20.0, 3.0]
    (count,) = aggregate([a, b], "count", ())
    assert list(count.values) == [1.0, 1.0, 1.0, 1.0]


def test_group_by_and_none():
    series = [
        Series({"host": h, "dc": d}, T[:1], np.array([v]))
        for h, d, v in (("a", "x", 1.0), ("b", "x", 2.0), ("c", "y", 5.0))
    ]
    groups = aggregate(series, "max", ("dc",))
    assert [(g.tags, list(g.values)) for g in groups] == [({"dc": "x"}, [2.0]), ({"dc": "y", "host": "c"}, [5.0])]
    assert len(aggregate(series, "none", ())) == 3
