"""Source rows to v2 tuples: the shared point rules, then straight into a BatchBuilder.

The v1 path builds an ``Envelope`` per point; at the v2 rates that object is a third of a point's
cost, so here a valid row becomes its tuple (``ums_batch.point_tuple``'s shape) directly. The
rules are the very functions ``PointValidator`` applies (``check_series``, ``check_sample``,
``check_value_range``), with the same "now" (the window's collection time) and the same default
version, so a row is accepted or rejected, with the same reason, on both paths.

A source that hands over column blocks (``row_block.RowBlock``) is packed a block at a time
(``pack_block``): the sample rules column-wise, each series judged once per block, and no
RawRecord built for a row the rules accept at once; any other row goes through ``pack`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from rtdp_dagster.envelope.batch_builder import BatchBuilder, PointTooLarge, SeriesSlot, UmsBatchBounds, slot_of
from rtdp_dagster.envelope.keys import series_key
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.row_block import RowBlock
from rtdp_dagster.envelope.schema import OPS
from rtdp_dagster.envelope.ums_batch import PointTuple
from rtdp_dagster.envelope.validation import (
    OVERSIZE_TAGS,
    PointRules,
    Rejection,
    check_sample,
    check_series,
    check_value_range,
)


class SourceRow(Protocol):
    """A row as a source read it (``envelope.records.RawRecord`` is one)."""

    @property
    def metric(self) -> Any: ...
    @property
    def tags(self) -> Any: ...
    @property
    def value(self) -> Any: ...
    @property
    def ts_ms(self) -> Any: ...
    @property
    def op(self) -> Any: ...
    @property
    def version(self) -> int | None: ...


class PointPacker:
    """Validates rows and packs the valid ones; one per collector, kept across windows."""

    _MAX_CACHED_SERIES = 200_000

    def __init__(
        self,
        rules: PointRules,
        partition_of: Callable[[str], int],
        bounds: UmsBatchBounds | None = None,
        kinds: MetricKinds | None = None,
    ) -> None:
        self.rules = rules
        self.kinds = kinds
        # Of the records the collector builds with this packer's points.
        self.bounds = bounds or UmsBatchBounds()
        self._partition_of = partition_of
        # (metric, tag items as read) -> the valid series' slot. Keyed by the items, not the series
        # key: building the key costs more than the lookup; any tag order maps to the same slot.
        self._slots: dict[tuple[str, tuple[tuple[str, str], ...]], SeriesSlot] = {}

    def pack(self, row: SourceRow, ums_id: int, into: BatchBuilder) -> str | Rejection:
        """The point_key of the packed point, or why the row is not a valid point.

        ``ums_id`` is the version used when the row has none of its own.
        """
        metric, tags = row.metric, row.tags
        try:
            slot = self._slots.get((metric, tuple(tags.items())))
        except (AttributeError, TypeError):  # tags not a mapping, or an unhashable tag value
            slot = None
        if slot is None:
            slot = self._new_series(metric, tags)
            if isinstance(slot, Rejection):
                return slot
        ts, op = row.ts_ms, row.op
        checked = check_sample(row.value, ts, op, into.origin.collected_at, self.rules)
        if isinstance(checked, Rejection):
            return checked
        if self.kinds is not None:
            out_of_range = check_value_range(metric, checked, self.kinds)
            if out_of_range is not None:
                return out_of_range
        key = slot.point_key(ts)
        version = row.version
        try:
            into.add(slot, (ums_id if version is None else version, ts, op, key, checked))
        except PointTooLarge as exc:
            return Rejection(OVERSIZE_TAGS, str(exc))
        return key

    def pack_block(
        self, block: RowBlock, first_ums_id: int, into: BatchBuilder, keys: list[str]
    ) -> list[tuple[int, Rejection]]:
        """``pack`` of every row of the block, in order: the packed points' keys are appended to ``keys``;
        returns the rejected rows (index in the block, why).

        Row ``i``'s default version is ``first_ums_id + i``. The sample rules are applied column-wise
        first: a row of a valid series whose timestamp is within bounds and whose value (but for a
        retraction) is finite is a point under ``pack``'s very rules, so it is packed without building
        its RawRecord; every other row is judged by ``pack`` itself, in its place, so order is kept.
        """
        rejected: list[tuple[int, Rejection]] = []
        if not len(block):
            return rejected
        op = block.op
        slots = {index: self._slot(block.series[index]) for index in np.unique(block.series_index).tolist()}
        # A series no record can hold: each of its points is refused as ``pack`` refuses it.
        oversize = {index: into.oversize(slot) for index, slot in slots.items() if slot is not None}
        rules = self.rules
        ts = block.ts_ms
        # Integer bounds equal to check_sample's (ts is an integer; "ahead" compares with a float).
        latest = math.floor(into.origin.collected_at + rules.max_future_s * 1000)
        plain = (ts >= rules.min_timestamp_ms) & (ts <= latest)
        if op != "d":
            plain &= np.isfinite(block.values)
        if op not in OPS:
            plain[:] = False
        values = [None] * len(block) if op == "d" else block.values.tolist()
        versions = block.versions.tolist() if block.versions is not None else None
        kinds, keep = self.kinds, keys.append
        # Accepted points wait here and go to the builder together, before any row judged by ``pack``.
        ready: list[tuple[SeriesSlot, PointTuple]] = []
        for row, (index, ts_ms, value, fast) in enumerate(
            zip(block.series_index.tolist(), ts.tolist(), values, plain.tolist(), strict=True)
        ):
            slot = slots[index]
            if not fast or slot is None:
                into.add_all(ready)
                ready = []
                result = self.pack(block.record(row), first_ums_id + row, into)
                if isinstance(result, Rejection):
                    rejected.append((row, result))
                else:
                    keep(result)
                continue
            too_large = oversize[index]
            if too_large is not None:
                rejected.append((row, Rejection(OVERSIZE_TAGS, too_large)))
                continue
            if kinds is not None:
                out_of_range = check_value_range(slot.metric, value, kinds)
                if out_of_range is not None:
                    rejected.append((row, out_of_range))
                    continue
            digest = slot.key_prefix.copy()  # slot.point_key(ts_ms), inlined: this runs once per point
            digest.update(b"%d" % ts_ms)
            key = digest.hexdigest()
            ready.append((slot, (first_ums_id + row if versions is None else versions[row], ts_ms, op, key, value)))
            keep(key)
        into.add_all(ready)
        return rejected

    def _slot(self, series: Any) -> SeriesSlot | None:
        """The slot of a block's series; None if it is not valid (its rows are then judged by ``pack``)."""
        metric, tags = series.metric, series.tags
        try:
            slot = self._slots.get((metric, tuple(tags.items())))
        except (AttributeError, TypeError):
            return None
        if slot is None:
            made = self._new_series(metric, tags)
            return None if isinstance(made, Rejection) else made
        return slot

    def _new_series(self, metric: Any, tags: Any) -> SeriesSlot | Rejection:
        """The slot of a series not seen yet (remembered only if valid), or why it is not valid."""
        if not isinstance(metric, str) or not isinstance(tags, dict):
            rejection = check_series(metric, tags, self.rules)
            assert rejection is not None
            return rejection
        rejection = check_series(metric, tags, self.rules)
        if rejection is not None:
            return rejection
        series = series_key(metric, tags)
        slot = slot_of(series, self._partition_of(series), metric, tags)
        if len(self._slots) >= self._MAX_CACHED_SERIES:
            self._slots.clear()
        # Valid tags are strings, so the items are hashable.
        self._slots[(metric, tuple(tags.items()))] = slot
        return slot
