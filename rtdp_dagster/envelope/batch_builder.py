"""Packing a stream of point tuples into bounded UMS batch records, one open record per partition.

A record holds only series of one partition, so the partition a record is sent to is the
partition of every series in it: a series stays in one partition, in order. A record is closed
when the next point would exceed ``max_points`` or ``max_bytes``, when it has been open
``linger_ms`` (checked as points arrive; by ``add_all`` every 256 points) and at ``flush`` (the
collector flushes at the end of every window, before it confirms the window, so no record spans
two windows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from rtdp_dagster.envelope.keys import point_key_prefix
from rtdp_dagster.envelope.ums_batch import (
    TUPLE_BYTES_BESIDES_KEY,
    BatchOrigin,
    PointTuple,
    encode_record,
    series_identity,
)


class UmsBatchBounds(BaseModel):
    """Bounds of one v2 record (configuration key ``collection.ums_batch``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Points of one record at most.
    max_points: int = Field(default=2000, ge=1, le=100_000)
    # Bytes of the JSON value, before compression; the broker's default limit is 1 MiB a message.
    max_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=1_000_000)
    # A record open this long is closed when the next point arrives; every window's end closes all.
    linger_ms: float = Field(default=100.0, gt=0)


@dataclass(frozen=True, slots=True)
class SeriesSlot:
    """A series as the builder needs it, made once per series (``slot_of``)."""

    series: str
    partition: int
    # ums_batch.series_identity(metric, tags): the group's metric and tags, shared by its records.
    identity: dict[str, Any]
    # Bytes of the group with no tuples, plus the comma before it.
    group_bytes: int
    # blake2b already fed with "<series>|": a point's key hashes only its timestamp on top (a copy
    # of a fed hash is cheaper than hashing the whole text again, once per point).
    key_prefix: Any

    @property
    def metric(self) -> str:
        return self.identity["metric"]

    def point_key(self, ts_ms: int) -> str:
        """``keys.point_key_of_series(series, ts_ms)``."""
        digest = self.key_prefix.copy()
        digest.update(b"%d" % ts_ms)
        return digest.hexdigest()


def slot_of(series: str, partition: int, metric: str, tags: Mapping[str, str]) -> SeriesSlot:
    identity = series_identity(metric, tags)
    group_bytes = len(orjson.dumps({**identity, "tuples": []})) + 1
    return SeriesSlot(series, partition, identity, group_bytes, point_key_prefix(series))


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    partition: int
    value: bytes
    points: int


# Points ``BatchBuilder.add_all`` adds between two looks at the clock.
CLOCK_EVERY = 256


class PointTooLarge(ValueError):
    """One point that does not fit into an empty record of ``max_bytes``."""


class _OpenBatch:
    __slots__ = ("groups", "identities", "opened_at", "points", "size")

    def __init__(self, size: int, opened_at: float) -> None:
        # series -> its tuples, in order of first appearance; identities: each group's metric and tags.
        self.groups: dict[str, list[PointTuple]] = {}
        self.identities: list[dict[str, Any]] = []
        self.points = 0
        self.size = size
        self.opened_at = opened_at


class BatchBuilder:
    """Builds the records of one origin (one window); ``emit`` receives each record as it closes.

    Sizes are counted as upper bounds (every tuple as its widest numbers, the header with the
    widest point count), so a record is never larger than ``max_bytes``, and is encoded once, at
    close: counting exactly would mean encoding every tuple on its own, several times the cost.
    """

    def __init__(
        self,
        origin: BatchOrigin,
        bounds: UmsBatchBounds,
        emit: Callable[[ClosedBatch], None],
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.origin = origin
        self._max_points = bounds.max_points
        self._max_bytes = bounds.max_bytes
        self._linger_s = bounds.linger_ms / 1000
        self._emit = emit
        self._clock_s = clock_s
        self._empty_size = len(encode_record(origin, bounds.max_points, []))
        self._open: dict[int, _OpenBatch] = {}
        self._next_deadline = float("inf")
        self.records = 0
        self.points = 0

    def add(self, slot: SeriesSlot, point: PointTuple) -> None:
        """Add one point of the slot's series (raises PointTooLarge if it can never fit)."""
        # The common case first and short: this runs once per point.
        batch = self._open.get(slot.partition)
        tuples = None if batch is None else batch.groups.get(slot.series)
        if tuples is None or batch is None:
            self._add_to_new_group(slot, point)
        else:
            growth = TUPLE_BYTES_BESIDES_KEY + 1 + len(point[3])
            if batch.points >= self._max_points or batch.size + growth > self._max_bytes:
                self._close(slot.partition)
                self._add_to_new_group(slot, point)
            else:
                tuples.append(point)
                batch.points += 1
                batch.size += growth
        if self._clock_s() >= self._next_deadline:
            self._close_lingering()

    def add_all(self, points: Iterable[tuple[SeriesSlot, PointTuple]]) -> None:
        """``add`` of each (slot, point) in order, for a source's block of points.

        The same records as ``add`` one by one, but for the linger: the clock is read every
        ``CLOCK_EVERY`` points and at the end (~1 ms of points at 200k points/s), not per point.
        Every slot must fit an empty record (``oversize`` is None), else PointTooLarge is raised
        with the points after it not added.
        """
        open_batches, max_points, max_bytes = self._open, self._max_points, self._max_bytes
        clock, every = self._clock_s, CLOCK_EVERY
        for n, (slot, point) in enumerate(points, 1):
            batch = open_batches.get(slot.partition)
            tuples = None if batch is None else batch.groups.get(slot.series)
            growth = TUPLE_BYTES_BESIDES_KEY + 1 + len(point[3])
            if tuples is None or batch is None:
                self._add_to_new_group(slot, point)
            elif batch.points < max_points and batch.size + growth <= max_bytes:
                tuples.append(point)
                batch.points += 1
                batch.size += growth
            else:
                self._close(slot.partition)
                self._add_to_new_group(slot, point)
            if not n % every and clock() >= self._next_deadline:
                self._close_lingering()
        if clock() >= self._next_deadline:
            self._close_lingering()

    def oversize(self, slot: SeriesSlot, key_length: int = 32) -> str | None:
        """Why a point of the slot (its key ``key_length`` characters) can never fit a record; None if it can."""
        growth = TUPLE_BYTES_BESIDES_KEY + 1 + key_length + slot.group_bytes
        if self._empty_size + growth <= self._max_bytes:
            return None
        return (
            f"a point of {slot.series[:200]} takes up to {growth} bytes beyond the record's header; "
            f"max_bytes {self._max_bytes}"
        )

    def _add_to_new_group(self, slot: SeriesSlot, point: PointTuple) -> None:
        batch = self._open.get(slot.partition)
        if batch is None:
            batch = self._start(slot.partition)
        growth = TUPLE_BYTES_BESIDES_KEY + 1 + len(point[3]) + slot.group_bytes
        if batch.points >= self._max_points or batch.size + growth > self._max_bytes:
            if not batch.points:
                raise PointTooLarge(self.oversize(slot, len(point[3])))
            self._close(slot.partition)
            batch = self._start(slot.partition)
        batch.groups[slot.series] = [point]
        batch.identities.append(slot.identity)
        batch.points += 1
        batch.size += growth

    def flush(self) -> None:
        """Close every open record."""
        for partition in list(self._open):
            self._close(partition)

    @property
    def open_points(self) -> int:
        return sum(batch.points for batch in self._open.values())

    def _start(self, partition: int) -> _OpenBatch:
        now = self._clock_s()
        batch = self._open[partition] = _OpenBatch(self._empty_size, now)
        self._next_deadline = min(self._next_deadline, now + self._linger_s)
        return batch

    def _close_lingering(self) -> None:
        now = self._clock_s()
        for partition, batch in list(self._open.items()):
            if now >= batch.opened_at + self._linger_s:
                self._close(partition)
        self._next_deadline = min((b.opened_at + self._linger_s for b in self._open.values()), default=float("inf"))

    def _close(self, partition: int) -> None:
        batch = self._open.pop(partition)
        points = batch.points
        if not points:
            return
        groups = [
            {**identity, "tuples": tuples}
            for identity, tuples in zip(batch.identities, batch.groups.values(), strict=True)
        ]
        value = encode_record(self.origin, points, groups)
        self.records += 1
        self.points += points
        self._emit(ClosedBatch(partition, value, points))
