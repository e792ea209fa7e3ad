"""Executing one window of one source: read, validate, publish, confirm, log.

Used by every wave: wave 1 in the long-running `rtdp ingest`, waves 2 and 3 in Dagster jobs.
One bad row never stops a window: it becomes a dead letter with its reason. Points are published
as v1 envelopes (a record each) or, with ``collection.envelope_version: 2``, as UMS batches; the
collection log counts points either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rtdp_dagster.collection.gc_pause import gc_paused
from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.state import CollectionState, LogRow, Window, key_hashes
from rtdp_dagster.config import CollectionConfig
from rtdp_dagster.envelope.batch_builder import BatchBuilder
from rtdp_dagster.envelope.point_packer import PointPacker
from rtdp_dagster.envelope.row_block import RowBlock
from rtdp_dagster.envelope.ums_batch import BatchOrigin
from rtdp_dagster.envelope.validation import PointRules, PointValidator, Rejection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowContext:
    source: Source
    namespace: str
    validator: PointValidator
    publisher: Publisher
    state: CollectionState
    clock_ms: Callable[[], int]
    # Receives each window's log row after it is complete (e.g. rtdp.collect.* metrics).
    on_window: Callable[[LogRow], None] | None = None
    # Set: publish envelope v2 (UMS batches); None: v1, a record per point.
    packer: PointPacker | None = None


def batch_packer(collection: CollectionConfig, rules: PointRules, publisher: Publisher) -> PointPacker | None:
    """The v2 packer when the configuration asks for envelope v2, else None (v1)."""
    if collection.envelope_version == 1:
        return None
    return PointPacker(rules, publisher.series_partition, collection.ums_batch)


def _json_safe(raw: object) -> object:
    if raw is None or isinstance(raw, str | int | float | bool | list | dict):
        return raw
    return repr(raw)


@dataclass
class _WindowRead:
    """What reading one window produced, counted in points (not Kafka records)."""

    rows_read: int = 0
    dead: int = 0
    published_keys: list[str] = field(default_factory=list)


def _dead_letter(context: WindowContext, window: Window, collected_at: int, raw: object, rejection: Rejection) -> None:
    context.publisher.send_dead_letter(
        {
            "reason": rejection.reason,
            "detail": rejection.detail,
            "raw": _json_safe(raw),
            "source": window.source,
            "namespace": context.namespace,
            "wave": window.wave,
            "window_start": window.start_ms,
            "window_end": window.end_ms,
            "collected_at": collected_at,
        }
    )


def _publish_points(context: WindowContext, window: Window, collected_at: int) -> _WindowRead:
    """Envelope v1: one record per point, keyed by its series."""
    read = _WindowRead()
    for record in context.source.read_window(window.start_ms, window.end_ms, collected_at):
        read.rows_read += 1
        # Without a version of the source's own, later collections win: ms * 10^6 + row. Rows
        # of one read stay in read order up to a million rows (the later duplicate wins), and
        # a read a millisecond later still outranks them; int64 holds it until year 2262.
        result = context.validator.to_envelope(
            record,
            namespace=context.namespace,
            source=window.source,
            wave=window.wave,
            collected_at=collected_at,
            ums_id=collected_at * 1_000_000 + read.rows_read,
        )
        if isinstance(result, Rejection):
            read.dead += 1
            _dead_letter(context, window, collected_at, record.raw, result)
            continue
        context.publisher.send_point(result)
        read.published_keys.append(result.point_key)
    return read


def _publish_batches(context: WindowContext, packer: PointPacker, window: Window, collected_at: int) -> _WindowRead:
    """Envelope v2: UMS batch records of one partition each; the same rules, versions and dead letters as v1."""
    read = _WindowRead()
    origin = BatchOrigin(context.namespace, window.source, window.wave, collected_at)
    builder = BatchBuilder(origin, packer.bounds, context.publisher.send_batch)
    keys = read.published_keys
    pack, keep = packer.pack, keys.append  # bound once: this loop runs once per row
    ums_base = collected_at * 1_000_000  # ums_id_ = ms * 10^6 + row, as v1
    rows_read = 0
    read_blocks = getattr(context.source, "read_blocks", None)
    if read_blocks is None:
        for rows_read, record in enumerate(context.source.read_window(window.start_ms, window.end_ms, collected_at), 1):
            result = pack(record, ums_base + rows_read, builder)
            if isinstance(result, Rejection):
                read.dead += 1
                _dead_letter(context, window, collected_at, record.raw, result)
            else:
                keep(result)
    else:
        # A vectorised source: the same rows in the same order, judged a block of columns at a time.
        for item in read_blocks(window.start_ms, window.end_ms, collected_at):
            if isinstance(item, RowBlock):
                for row, rejection in packer.pack_block(item, ums_base + rows_read + 1, builder, keys):
                    read.dead += 1
                    _dead_letter(context, window, collected_at, item.record(row).raw, rejection)
                rows_read += len(item)
                continue
            rows_read += 1
            result = pack(item, ums_base + rows_read, builder)
            if isinstance(result, Rejection):
                read.dead += 1
                _dead_letter(context, window, collected_at, item.raw, result)
            else:
                keep(result)
    # Every record of the window is sent before the window is confirmed: none spans two windows.
    builder.flush()
    read.rows_read = rows_read
    return read


@dataclass(frozen=True)
class PublishedWindow:
    """A window whose records Kafka acknowledged, not logged yet: its log row (``rows_new`` still to
    count against earlier waves) and the hashes of the keys it published."""

    window: Window
    log: LogRow
    hashes: np.ndarray


def publish_window(context: WindowContext, window: Window) -> PublishedWindow:
    """Read, validate and publish one window; raises (leaving it pending) if its records could not be confirmed."""
    started = time.monotonic()
    collected_at = context.clock_ms()
    context.state.record_attempt(window)
    try:
        with gc_paused():
            if context.packer is None:
                read = _publish_points(context, window, collected_at)
            else:
                read = _publish_batches(context, context.packer, window, collected_at)
        context.publisher.confirm()
    except BaseException:
        context.publisher.discard()
        raise
    log = LogRow(
        source=window.source,
        wave=window.wave,
        window_start=window.start_ms,
        window_end=window.end_ms,
        rows_read=read.rows_read,
        rows_valid=len(read.published_keys),
        rows_new=0,
        rows_dead_lettered=read.dead,
        duration_ms=int((time.monotonic() - started) * 1000),
        status="ok",
        attempts=window.attempts + 1,
        finished_at=context.clock_ms(),
    )
    return PublishedWindow(window, log, key_hashes(read.published_keys))


def log_window(context: WindowContext, published: PublishedWindow) -> LogRow:
    """Mark a published window done and write its collection-log row.

    Raises if the state store cannot be written; the caller keeps ``published`` and calls again, so
    records Kafka already holds get their row once the store is back, without being read again. A
    retry after a commit that did happen writes nothing (``complete_window``).
    """
    window, hashes = published.window, published.hashes
    earlier = context.state.seen_before(window.source, window.wave, window.start_ms, window.end_ms)
    new_hashes = hashes[~np.isin(hashes, earlier)] if earlier.size else hashes
    log = replace(published.log, rows_new=int(new_hashes.size))
    context.state.complete_window(window, log, new_hashes)
    if context.on_window is not None:
        context.on_window(log)
    return log


def collect_window(context: WindowContext, window: Window) -> LogRow:
    """Collect one window; raises (leaving it pending) if its records could not be confirmed or logged."""
    return log_window(context, publish_window(context, window))


def drain(context: WindowContext, wave: int, should_stop: Callable[[], bool] = lambda: False) -> list[LogRow]:
    """Execute every pending window of the source for this wave, strictly in order."""
    logs = []
    while not should_stop():
        window = context.state.next_window(context.source.name, wave)
        if window is None:
            break
        logs.append(collect_window(context, window))
    return logs
