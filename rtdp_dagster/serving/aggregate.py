"""Grouping series and aggregating each group across series, as OpenTSDB does.

Series are grouped by the values of the group-by tags. ``sum``, ``avg``, ``min`` and ``max``
interpolate linearly a series that lacks a timestamp between two of its points (and leave it out
before its first and after its last point); ``zimsum``, ``mimmin``, ``mimmax``, ``count``,
``first`` and ``last`` use only the values present. ``none`` returns every series as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtdp_dagster.serving.errors import bad_request

_INTERPOLATING = ("sum", "avg", "min", "max")
# Cells (series x distinct timestamps) one group may aggregate; beyond, the query needs a downsample.
MAX_CELLS = 20_000_000


@dataclass
class Series:
    tags: dict[str, str]
    timestamps: np.ndarray  # int64 ms, ascending
    values: np.ndarray  # float64, NaN for filled empty buckets


@dataclass
class Group:
    tags: dict[str, str]
    aggregate_tags: list[str]
    timestamps: np.ndarray
    values: np.ndarray


def aggregate(series: list[Series], aggregator: str, group_by: tuple[str, ...]) -> list[Group]:
    if aggregator == "none":
        return [Group(dict(item.tags), [], item.timestamps, item.values) for item in _sorted(series)]
    groups: dict[tuple, list[Series]] = {}
    for item in _sorted(series):
        groups.setdefault(tuple(item.tags.get(key, "") for key in group_by), []).append(item)
    return [_combine(members, aggregator) for _, members in sorted(groups.items())]


def _combine(members: list[Series], aggregator: str) -> Group:
    common = dict(members[0].tags)
    for item in members[1:]:
        common = {key: value for key, value in common.items() if item.tags.get(key) == value}
    aggregate_tags = sorted({key for item in members for key in item.tags} - set(common))
    if len(members) == 1 and aggregator != "count":
        return Group(common, aggregate_tags, members[0].timestamps, members[0].values)
    times = np.unique(np.concatenate([item.timestamps for item in members]))
    if len(times) * len(members) > MAX_CELLS:
        raise bad_request(
            f"aggregating {len(members)} series over {len(times):,} distinct timestamps is too "
            "large; add a downsample (e.g. 1m-avg)"
        )
    matrix = np.full((len(members), len(times)), np.nan)
    present = np.zeros_like(matrix, dtype=bool)
    for row, item in enumerate(members):
        columns = np.searchsorted(times, item.timestamps)
        matrix[row, columns] = item.values
        present[row, columns] = True
        if aggregator in _INTERPOLATING:
            _interpolate(matrix[row], present[row], times, item)
    return Group(common, aggregate_tags, times, _reduce(matrix, aggregator))


def _interpolate(row: np.ndarray, present: np.ndarray, times: np.ndarray, item: Series) -> None:
    known = ~np.isnan(item.values)
    if known.sum() < 2:
        return
    inside = ~present & (times > item.timestamps[0]) & (times < item.timestamps[-1])
    row[inside] = np.interp(times[inside], item.timestamps[known], item.values[known])


def _reduce(matrix: np.ndarray, aggregator: str) -> np.ndarray:
    valued = ~np.isnan(matrix)
    any_value = valued.any(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if aggregator in ("sum", "zimsum"):
            result = np.nansum(matrix, axis=0)
        elif aggregator == "avg":
            result = np.nansum(matrix, axis=0) / valued.sum(axis=0)
        elif aggregator in ("min", "mimmin"):
            result = np.fmin.reduce(matrix, axis=0)
        elif aggregator in ("max", "mimmax"):
            result = np.fmax.reduce(matrix, axis=0)
        elif aggregator == "count":
            return valued.sum(axis=0).astype(np.float64)
        elif aggregator in ("first", "last"):
            rows = np.argmax(valued, axis=0) if aggregator == "first" else len(matrix) - 1 - np.argmax(valued[::-1], 0)
            result = matrix[rows, np.arange(matrix.shape[1])]
        else:
            raise ValueError(f"unknown aggregator {aggregator!r}")
    return np.where(any_value, result, np.nan)


def _sorted(series: list[Series]) -> list[Series]:
    return sorted(series, key=lambda item: sorted(item.tags.items()))
