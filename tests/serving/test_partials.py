"""Partial aggregates merge exactly: one pass over all points equals any split into parts."""

from __future__ import annotations

import numpy as np

from rtdp_dagster.serving.partials import PartialSet, reduce_samples


def test_a_bucket_split_between_two_sources_equals_one_pass():
    rng = np.random.default_rng(7)
    times = np.sort(rng.choice(np.arange(0, 4 * 3_600_000, 60_000), size=150, replace=False))
    values = rng.normal(size=len(times)).round(3)
    index = times // 3_600_000
    names = ("count", "sum", "min", "max", "first", "last")

    def of(name: str, mask: np.ndarray) -> np.ndarray:
        # Each raw point is a rollup row of count 1 and of its own value for every other aggregate.
        rows = np.ones(mask.sum()) if name == "count" else values[mask]
        return reduce_samples(name, index[mask], times[mask], rows, 4)

    everything = np.ones(len(times), dtype=bool)
    whole = {name: of(name, everything) for name in names}
    split = PartialSet(4, names)
    cut = 5_400_000  # the middle of bucket 1: an older source before, a newer one after
    for part in (times < cut, times >= cut):
        for name in split.aggregates:
            reduced = of(name, part)
            present = ~np.isnan(reduced)
            split.add({"host": "a"}, name, np.flatnonzero(present), reduced[present])
    merged = split.series[(("host", "a"),)]
    for name in split.aggregates:
        np.testing.assert_allclose(merged[name], whole[name], rtol=1e-12)
    expected_avg = [values[index == bucket].mean() for bucket in range(4)]
    np.testing.assert_allclose(split.evaluate("avg")[(("host", "a"),)], expected_avg, rtol=1e-12)


def test_empty_buckets_stay_nan():
    partials = PartialSet(3, ("sum", "count"))
    partials.add({"h": "x"}, "sum", np.array([1]), np.array([4.0]))
    partials.add({"h": "x"}, "count", np.array([1]), np.array([2.0]))
    avg = partials.evaluate("avg")[(("h", "x"),)]
    assert np.isnan(avg[0]) and avg[1] == 2.0 and np.isnan(avg[2])
