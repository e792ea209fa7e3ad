"""Mergeable partial aggregates per series and downsample bucket: count, sum, min, max, first, last.

Every source (raw points in the realtime TSDB, any rollup level) yields the same partials for the
buckets, or the parts of buckets, it serves; merging them in time order gives exactly what one
pass over all the points would: counts and sums add, min and max combine, the earliest first and
the latest last win. avg is sum / count.
"""

from __future__ import annotations

import numpy as np

from rtdp_dagster.serving.filters import HIDDEN_TAGS

# The partial aggregates each downsample function needs.
NEEDS = {
    "avg": ("sum", "count"),
    "sum": ("sum",),
    "count": ("count",),
    "min": ("min",),
    "max": ("max",),
    "first": ("first",),
    "last": ("last",),
}

# Downsample functions a source may compute whole when no bucket is shared with another source
# (the other functions are their own partial aggregates): never merged within one bucket.
FINAL = ("avg",)

SeriesKey = tuple[tuple[str, str], ...]


def series_tags(labels: dict[str, str]) -> dict[str, str]:
    """A backend series' tags as shown to users: no metric name, no rollup bookkeeping."""
    return {key: value for key, value in labels.items() if not key.startswith("__") and key not in HIDDEN_TAGS}


def key_of(tags: dict[str, str]) -> SeriesKey:
    return tuple(sorted(tags.items()))


class PartialSet:
    """Per series: per partial aggregate, an array over the query's buckets (NaN where nothing)."""

    def __init__(self, buckets: int, aggregates: tuple[str, ...]) -> None:
        self.buckets = buckets
        self.aggregates = aggregates
        self.series: dict[SeriesKey, dict[str, np.ndarray]] = {}  # only the aggregates seen so far
        self._empty = np.full(buckets, np.nan)
        self._empty.flags.writeable = False
        self.tags: dict[SeriesKey, dict[str, str]] = {}

    def add(self, tags: dict[str, str], aggregate: str, index: np.ndarray, values: np.ndarray) -> None:
        """Merge values for the buckets at index; later calls are later in time."""
        key = key_of(tags)
        arrays = self.series.get(key)
        if arrays is None:
            arrays = self.series[key] = {}
            self.tags[key] = tags
        incoming = np.full(self.buckets, np.nan)
        incoming[index] = values
        earlier = arrays.get(aggregate)
        # The first contribution is taken as it is: merging with all-NaN changes nothing.
        arrays[aggregate] = incoming if earlier is None else merge(aggregate, earlier, incoming)

    def evaluate(self, function: str) -> dict[SeriesKey, np.ndarray]:
        """Per series, the downsample function's value per bucket (NaN: empty bucket)."""
        result = {}
        for key, found in self.series.items():
            arrays = {name: found.get(name, self._empty) for name in self.aggregates}
            if function == "avg" and "avg" not in arrays:
                with np.errstate(divide="ignore", invalid="ignore"):
                    values = arrays["sum"] / arrays["count"]
                values[~(arrays["count"] > 0)] = np.nan
            else:
                values = arrays[function]
            result[key] = values
        return result


def merge(aggregate: str, earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    if aggregate in ("count", "sum"):
        return np.where(np.isnan(earlier), later, np.where(np.isnan(later), earlier, earlier + later))
    if aggregate == "min":
        return np.fmin(earlier, later)
    if aggregate == "max":
        return np.fmax(earlier, later)
    if aggregate == "first":
        return np.where(np.isnan(earlier), later, earlier)
    if aggregate == "last" or aggregate in FINAL:
        return np.where(np.isnan(later), earlier, later)
    raise ValueError(f"unknown partial aggregate {aggregate!r}")


def reduce_samples(
    aggregate: str, index: np.ndarray, timestamps: np.ndarray, values: np.ndarray, buckets: int
) -> np.ndarray:
    """One aggregate per bucket from rollup rows of that aggregate (counts add up) and their bucket index."""
    out = np.full(buckets, np.nan)
    if len(index) == 0:
        return out
    present = np.bincount(index, minlength=buckets) > 0
    if aggregate in ("count", "sum"):
        out[present] = np.bincount(index, weights=values, minlength=buckets)[present]
    elif aggregate in ("min", "max"):
        ufunc = np.fmin if aggregate == "min" else np.fmax
        ufunc.at(out, index, values)
    else:
        order = np.lexsort((timestamps, index))
        if aggregate == "last":
            order = order[::-1]
        first_of_bucket = np.unique(index[order], return_index=True)[1]
        picked = order[first_of_bucket]
        out[index[picked]] = values[picked]
    return out
