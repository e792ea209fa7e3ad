"""Source rows to v2 tuples: the shared point rules, then straight into a BatchBuilder.

The v1 path builds an ``Envelope`` per point; at the v2 rates that object is a third of a point's
cost, so here a valid row becomes its tuple (``ums_batch.point_tuple``'s shape) directly. The
rules are the very functions ``PointValidator`` applies (``check_series``, ``check_sample``,
``check_value_range``), with the same "now" (the window's collection time) and the same default
version, so a row is accepted or rejected, with the same reason, on both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rtdp_dagster.envelope.batch_builder import BatchBuilder, PointTooLarge, SeriesSlot, UmsBatchBounds, slot_of
from rtdp_dagster.envelope.keys import point_key_of_series, series_key
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.validation import (
    OVERSIZE_TAGS,
    PointRules,
    Rejection,
    check_sample,
    check_series,
    check_value_range,
)


class SourceRow(Protocol):
    """A row as a source read it (``collection.records.RawRecord`` is one)."""

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
        key = point_key_of_series(slot.series, ts)
        version = row.version
        try:
            into.add(slot, (ums_id if version is None else version, ts, op, key, checked))
        except PointTooLarge as exc:
            return Rejection(OVERSIZE_TAGS, str(exc))
        return key

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
