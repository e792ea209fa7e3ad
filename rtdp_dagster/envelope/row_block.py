"""Rows of one operation as columns: what a vectorised source hands to the collector.

A source that computes its rows in arrays (the synthetic one) hands them over a block at a time
instead of a ``RawRecord`` per row, so the collector can judge the common case column-wise and
build no Python object per point besides the point's tuple. A block means exactly the rows
``records()`` yields, in that order: a collector that cannot use columns reads those, and a row the
column-wise rules cannot accept at once is judged as that very ``RawRecord``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from rtdp_dagster.envelope.records import Op, RawRecord


class SeriesIdentity(Protocol):
    """A series as a source knows it: its metric and its tags (never modified)."""

    @property
    def metric(self) -> str: ...
    @property
    def tags(self) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class RowBlock:
    """Rows ``i`` of one ``op``: series ``series[series_index[i]]`` at ``ts_ms[i]`` with ``values[i]``."""

    # The source's series table; rows refer to it by position.
    series: Sequence[SeriesIdentity]
    series_index: npt.NDArray[np.intp]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    # The source's version of each row; None: the collector's default version.
    versions: npt.NDArray[np.int64] | None
    op: Op

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    def record(self, row: int) -> RawRecord:
        """Row ``row`` as a RawRecord (its ``raw`` as the source would have kept it)."""
        item = self.series[int(self.series_index[row])]
        tags = dict(item.tags)
        ts = int(self.ts_ms[row])
        number = float(self.values[row])
        raw: dict[str, object] = {"metric": item.metric, "tags": tags, "value": number, "ts_ms": ts}
        if self.op != "i":
            raw["op"] = self.op
        version = None if self.versions is None else int(self.versions[row])
        return RawRecord(item.metric, tags, number, ts, self.op, version, raw)

    def records(self) -> Iterator[RawRecord]:
        """Every row as a RawRecord, in order."""
        series, op = self.series, self.op
        versions = [None] * len(self) if self.versions is None else self.versions.tolist()
        for index, ts, value, version in zip(
            self.series_index.tolist(), self.ts_ms.tolist(), self.values.tolist(), versions, strict=True
        ):
            item = series[index]
            tags = dict(item.tags)
            raw: dict[str, object] = {"metric": item.metric, "tags": tags, "value": value, "ts_ms": ts}
            if op != "i":
                raw["op"] = op
            yield RawRecord(item.metric, tags, value, ts, op, version, raw)
