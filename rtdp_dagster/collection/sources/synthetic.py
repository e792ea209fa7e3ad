"""Synthetic source for tests and benchmarks: seeded series with the faults of real sources.

Series are every (metric, site, host, app) combination, on one grid of ``cadence_s``. Everything
about a point (its value, delay, being duplicated, corrected, retracted or malformed) is drawn
from keys of (seed, series identity, time step), so it is the same in every instance, in every
read order and in every window size. Windows are computed in numpy, a chunk of steps at a time.

Faults, each at its configured share of points:

- lateness: a point is visible once ``now_ms >= ts_ms + delay`` (delay as in the CSV replay);
- duplicates: the same record yielded twice;
- corrections: an extra ``u`` record with a different value and a larger version, visible a
  revision delay after the original (a counter's stays between its neighbours' readings, so the
  truth remains a counter); retractions: likewise a ``d`` record (value = the original);
- malformed rows replacing the point, one kind each (``MALFORMED_KINDS``).

Versions are the moment a record became visible (``ts_ms + delay``, plus the revision delay for
``u`` and ``d``), so a later record always carries a larger version. Duplicate, correction and
retraction shares apply to well-formed points; a point is at most one of corrected or retracted.
``expected_truth`` gives the final value of every point of a window, for later layers to compare.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rtdp_dagster.collection.sources.readiness import delays_ms
from rtdp_dagster.collection.sources.seeded import F64, U64, keyed, mix_int, text_key, uniform
from rtdp_dagster.collection.sources.synthetic_shapes import PERCENT_BOUNDS, shape_values
from rtdp_dagster.config.sources import SyntheticSourceConfig
from rtdp_dagster.envelope.records import Op, RawRecord
from rtdp_dagster.envelope.row_block import RowBlock

I64 = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Index = npt.NDArray[np.intp]

MALFORMED_KINDS = (
    "missing_timestamp",
    "non_numeric_value",
    "nan_value",
    "inf_value",
    "future_timestamp",
    "invalid_metric",
    "oversize_tag",
)
NO_FAULT = len(MALFORMED_KINDS)
# Far beyond any clock skew the collector tolerates.
FUTURE_OFFSET_MS = 10 * 365 * 86_400_000
# Longer than any sane tag limit (PointRules default 256, VictoriaMetrics a few KiB).
OVERSIZE_TAG_CHARS = 10_000
NON_NUMERIC_TEXT = "n/a"
# Points computed at once: bounds memory for any window size.
_CHUNK_POINTS = 1 << 18
# Purposes of per-point draws.
_DUPLICATE, _FATE, _REVISION, _MALFORMED = 0x64757031, 0x66617465, 0x72657631, 0x6D616C31

# (metric, sorted tag items, ts_ms): the identity of a point in expected_truth.
PointId = tuple[str, tuple[tuple[str, str], ...], int]


@dataclass(frozen=True)
class SyntheticSeries:
    metric: str
    tags: dict[str, str]


@dataclass(frozen=True)
class _Chunk:
    """Everything about the points of a run of steps: arrays are (series, steps)."""

    timestamps: I64
    values: F64
    visible_at: I64
    malformed: npt.NDArray[np.int64]
    duplicated: BoolArray
    corrected: BoolArray
    retracted: BoolArray
    revised_at: I64
    corrected_values: F64


def _identity(series: SyntheticSeries) -> str:
    return series.metric + "|" + ",".join(f"{key}={value}" for key, value in sorted(series.tags.items()))


def _point_ids(series: list[SyntheticSeries]) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [(item.metric, tuple(sorted(item.tags.items()))) for item in series]


class SyntheticSource:
    """Generates (start, end] windows; see the module docstring for what is injected."""

    def __init__(self, config: SyntheticSourceConfig) -> None:
        self.name = config.name
        self._config = config
        self.cadence_ms = max(1, round(config.cadence_s * 1000))
        self.series: list[SyntheticSeries] = []
        # Series of one metric are contiguous: rows [start, stop) of every per-series array.
        self._metric_rows: list[tuple[int, int]] = []
        for metric in config.metrics:
            first = len(self.series)
            for site in range(1, config.sites + 1):
                for host in range(1, config.hosts_per_site + 1):
                    for app in range(1, config.apps + 1):
                        tags = {
                            "site": f"site{site:02d}",
                            "host": f"site{site:02d}-host{host:04d}",
                            "app": f"app{app:02d}",
                        }
                        self.series.append(SyntheticSeries(metric.name, tags))
            self._metric_rows.append((first, len(self.series)))
        # Keyed by the series' identity, not its position: adding hosts leaves other series as they were.
        self._series_keys: U64 = np.array(
            [mix_int(config.seed, text_key(_identity(item))) for item in self.series],
            dtype=np.uint64,
        )
        self._upper_bounds = np.array(
            [PERCENT_BOUNDS[1] if metric.shape == "percent" else math.inf for metric in config.metrics]
        ).repeat([stop - start for start, stop in self._metric_rows])[:, None]
        rates = config.malformed.model_dump()
        self._malformed_thresholds = np.cumsum([rates[kind] for kind in MALFORMED_KINDS])

    def _steps(self, start_ms: int, end_ms: int) -> Iterator[I64]:
        """Grid steps k with start < k * cadence <= end, in chunks."""
        first, last = start_ms // self.cadence_ms + 1, end_ms // self.cadence_ms
        per_chunk = max(1, _CHUNK_POINTS // len(self.series))
        for chunk_start in range(first, last + 1, per_chunk):
            yield np.arange(chunk_start, min(chunk_start + per_chunk, last + 1), dtype=np.int64)

    def _chunk(self, steps: I64) -> _Chunk:
        config = self._config
        values = np.empty((len(self.series), steps.size))
        # A counter's readings one step before and after (NaN for other shapes): its corrections stay between them.
        before, after = np.full_like(values, np.nan), np.full_like(values, np.nan)
        for metric, (start, stop) in zip(config.metrics, self._metric_rows, strict=True):
            keys = self._series_keys[start:stop]
            if metric.shape == "counter":
                around = shape_values(metric, keys, np.arange(steps[0] - 1, steps[-1] + 2), self.cadence_ms)
                values[start:stop] = around[:, 1:-1]
                before[start:stop], after[start:stop] = around[:, :-2], around[:, 2:]
            else:
                values[start:stop] = shape_values(metric, keys, steps, self.cadence_ms)
        # Rounded so values survive JSON and a TSDB's ~12 significant digits unchanged.
        values = np.round(values, 4)
        timestamps = steps * self.cadence_ms
        point_keys = keyed(self._series_keys[:, None], steps)
        visible_at = timestamps + delays_ms(config.lateness, point_keys)
        malformed = np.searchsorted(self._malformed_thresholds, uniform(keyed(_MALFORMED, point_keys)), side="right")
        well_formed = malformed == NO_FAULT
        fate = uniform(keyed(_FATE, point_keys))
        counter_values, counter_room = _counter_corrections(values, before, after)
        corrected = well_formed & (fate < config.correction_rate) & (np.isnan(before) | counter_room)
        retracted = (
            well_formed & (fate >= config.correction_rate) & (fate < config.correction_rate + config.retraction_rate)
        )
        low, high = config.revision_delay_min_s * 1000, config.revision_delay_max_s * 1000
        revision_delay = np.maximum(1, (low + uniform(keyed(_REVISION, point_keys)) * (high - low)).astype(np.int64))
        # A correction moves the value by at least 1 (10 % of larger values), downwards when
        # upwards would leave a bounded shape's range.
        delta = np.maximum(1.0, np.round(np.abs(values) * 0.1, 4))
        corrected_values = values + np.where(values + delta > self._upper_bounds, -delta, delta)
        corrected_values: F64 = np.where(np.isnan(before), corrected_values, counter_values)
        return _Chunk(
            timestamps=timestamps,
            values=values,
            visible_at=visible_at,
            malformed=malformed,
            duplicated=well_formed & (uniform(keyed(_DUPLICATE, point_keys)) < config.duplicate_rate),
            corrected=corrected,
            retracted=retracted,
            revised_at=visible_at + revision_delay,
            corrected_values=np.round(corrected_values, 4),
        )

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]:
        for item in self.read_blocks(start_ms, end_ms, now_ms):
            if isinstance(item, RowBlock):
                yield from item.records()
            else:
                yield item

    def read_blocks(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RowBlock | RawRecord]:
        """``read_window``'s rows in the same order: well-formed ones as column blocks, malformed ones as rows."""
        for steps in self._steps(start_ms, end_ms):
            chunk = self._chunk(steps)
            visible = chunk.visible_at <= now_ms
            yield self._block(chunk, visible & (chunk.malformed == NO_FAULT), "i", chunk.values, chunk.visible_at)
            yield self._block(chunk, visible & chunk.duplicated, "i", chunk.values, chunk.visible_at)
            revised = chunk.revised_at <= now_ms
            yield self._block(chunk, revised & chunk.corrected, "u", chunk.corrected_values, chunk.revised_at)
            yield self._block(chunk, revised & chunk.retracted, "d", chunk.values, chunk.revised_at)
            yield from self._malformed(chunk, visible & (chunk.malformed != NO_FAULT))

    @staticmethod
    def _selected(chunk: _Chunk, mask: BoolArray) -> tuple[list[int], list[int], Index, Index]:
        """Series positions and timestamps of the masked points, and their (row, column) indices."""
        # Transposed, so records come out in time order, all series of a step together.
        step_index, series_index = np.nonzero(mask.T)
        return series_index.tolist(), chunk.timestamps[step_index].tolist(), series_index, step_index

    def _block(self, chunk: _Chunk, mask: BoolArray, op: Op, values: F64, versions: I64) -> RowBlock:
        """The masked points as one block, in time order (all series of a step together)."""
        step_index, series_index = np.nonzero(mask.T)
        return RowBlock(
            self.series,
            series_index,
            chunk.timestamps[step_index],
            values[series_index, step_index],
            versions[series_index, step_index],
            op,
        )

    def _malformed(self, chunk: _Chunk, mask: BoolArray) -> Iterator[RawRecord]:
        series, timestamps, rows, columns = self._selected(chunk, mask)
        values = chunk.values[rows, columns].tolist()
        versions = chunk.visible_at[rows, columns].tolist()
        kinds = chunk.malformed[rows, columns].tolist()
        for index, ts, value, version, kind in zip(series, timestamps, values, versions, kinds, strict=True):
            item = self.series[index]
            yield _malformed_record(MALFORMED_KINDS[kind], item, value, ts, version)

    def expected_truth(self, start_ms: int, end_ms: int, now_ms: int | None = None) -> dict[PointId, float]:
        """Final value of every point in (start, end] after corrections and retractions.

        Malformed and retracted points are absent. With now_ms, only what a reader could have
        seen by then counts (a correction not yet visible leaves the original value).
        """
        ids = _point_ids(self.series)
        truth: dict[PointId, float] = {}
        for steps in self._steps(start_ms, end_ms):
            chunk = self._chunk(steps)
            horizon = np.iinfo(np.int64).max if now_ms is None else now_ms
            revised = chunk.revised_at <= horizon
            present = (chunk.visible_at <= horizon) & (chunk.malformed == NO_FAULT) & ~(chunk.retracted & revised)
            final = np.where(chunk.corrected & revised, chunk.corrected_values, chunk.values)
            rows, columns = np.nonzero(present)
            for row, ts, value in zip(
                rows.tolist(), chunk.timestamps[columns].tolist(), final[rows, columns].tolist(), strict=True
            ):
                metric, tags = ids[row]
                truth[(metric, tags, ts)] = value
        return truth

    def close(self) -> None:
        # Nothing to release: every window is computed on demand.
        return None


def _counter_corrections(values: F64, before: F64, after: F64) -> tuple[F64, BoolArray]:
    """A counter's corrected readings, and where it has room for one.

    A counter is corrected to another reading it could have had: half way to the next reading
    (or, when the next step resets, to the previous one), whole units apart from the original.
    So the truth stays non-decreasing between resets, also with both neighbours corrected. A reset
    reading (below the one before) is not corrected: it must stay a drop to almost nothing.
    """
    with np.errstate(invalid="ignore"):
        resets = values < before
        up = np.where(after >= values, np.floor((after - values) / 2), 0.0)
        down = np.floor((values - before) / 2)
        corrected = np.where(up >= 1, values + up, values - down)
        room = ~resets & ((up >= 1) | (down >= 1))
    return corrected, room


def _malformed_record(kind: str, item: SyntheticSeries, value: float, ts: int, version: int) -> RawRecord:
    """The point as a row of one malformed kind; raw is what the row would have looked like."""
    metric, tags, ts_ms, bad_value = item.metric, dict(item.tags), ts, value
    raw_value: object = value
    if kind == "missing_timestamp":
        ts_ms = None
    elif kind == "non_numeric_value":
        bad_value = raw_value = NON_NUMERIC_TEXT
    elif kind == "nan_value":
        bad_value, raw_value = math.nan, "NaN"
    elif kind == "inf_value":
        bad_value, raw_value = math.inf, "Infinity"
    elif kind == "future_timestamp":
        ts_ms = ts + FUTURE_OFFSET_MS
    elif kind == "invalid_metric":
        metric = f"{item.metric} bad$name"
    elif kind == "oversize_tag":
        tags["note"] = "x" * OVERSIZE_TAG_CHARS
    raw = {"metric": metric, "tags": tags, "value": raw_value, "ts_ms": ts_ms, "malformed": kind}
    return RawRecord(metric, tags, bad_value, ts_ms, "i", version, raw)
