"""Executing one window of one source: read, validate, publish, confirm, log.

Used by every wave: wave 1 in the long-running `rtdp ingest`, waves 2 and 3 in Dagster jobs.
One bad row never stops a window: it becomes a dead letter with its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.state import CollectionState, LogRow, Window, key_hashes
from rtdp_dagster.envelope.validation import PointValidator, Rejection

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


def _json_safe(raw: object) -> object:
    if raw is None or isinstance(raw, str | int | float | bool | list | dict):
        return raw
    return repr(raw)


def collect_window(context: WindowContext, window: Window) -> LogRow:
    """Collect one window; raises (leaving it pending) if its records could not be confirmed."""
    started = time.monotonic()
    collected_at = context.clock_ms()
    context.state.record_attempt(window)
    rows_read = 0
    dead = 0
    published_keys: list[str] = []
    try:
        for record in context.source.read_window(window.start_ms, window.end_ms, collected_at):
            rows_read += 1
            # Without a version of the source's own, later collections win: ms * 10^6 + row. Rows
            # of one read stay in read order up to a million rows (the later duplicate wins), and
            # a read a millisecond later still outranks them; int64 holds it until year 2262.
            result = context.validator.to_envelope(
                record,
                namespace=context.namespace,
                source=window.source,
                wave=window.wave,
                collected_at=collected_at,
                ums_id=collected_at * 1_000_000 + rows_read,
            )
            if isinstance(result, Rejection):
                dead += 1
                context.publisher.send_dead_letter(
                    {
                        "reason": result.reason,
                        "detail": result.detail,
                        "raw": _json_safe(record.raw),
                        "source": window.source,
                        "namespace": context.namespace,
                        "wave": window.wave,
                        "window_start": window.start_ms,
                        "window_end": window.end_ms,
                        "collected_at": collected_at,
                    }
                )
                continue
            context.publisher.send_point(result)
            published_keys.append(result.point_key)
        context.publisher.confirm()
    except BaseException:
        context.publisher.discard()
        raise
    hashes = key_hashes(published_keys)
    earlier = context.state.seen_before(window.source, window.wave, window.start_ms, window.end_ms)
    new_hashes = hashes[~np.isin(hashes, earlier)] if earlier.size else hashes
    log = LogRow(
        source=window.source,
        wave=window.wave,
        window_start=window.start_ms,
        window_end=window.end_ms,
        rows_read=rows_read,
        rows_valid=len(published_keys),
        rows_new=int(new_hashes.size),
        rows_dead_lettered=dead,
        duration_ms=int((time.monotonic() - started) * 1000),
        status="ok",
        attempts=window.attempts + 1,
        finished_at=context.clock_ms(),
    )
    context.state.complete_window(window, log, new_hashes)
    if context.on_window is not None:
        context.on_window(log)
    return log


def drain(context: WindowContext, wave: int, should_stop: Callable[[], bool] = lambda: False) -> list[LogRow]:
    """Execute every pending window of the source for this wave, strictly in order."""
    logs = []
    while not should_stop():
        window = context.state.next_window(context.source.name, wave)
        if window is None:
            break
        logs.append(collect_window(context, window))
    return logs
