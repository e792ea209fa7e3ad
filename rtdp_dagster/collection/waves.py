"""Catch-up waves 2 and 3: re-read closed windows of a source with the same collector.

Wave n covers (cursor, now - offset_n], starting where wave 1 started, in windows of at most
max_window; the same durable queue and cursor make it gap-free across runs and restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rtdp_dagster.collection.collector import WindowContext, batch_packer, drain
from rtdp_dagster.collection.locks import exclusive
from rtdp_dagster.collection.metrics import tsdb_sink
from rtdp_dagster.collection.publisher import Publisher
from rtdp_dagster.collection.sources.base import Source
from rtdp_dagster.collection.state import CollectionState, LogRow
from rtdp_dagster.config import Settings
from rtdp_dagster.config.sources import WaveConfig
from rtdp_dagster.envelope.validation import PointValidator
from rtdp_dagster.wall_clock import now_ms

logger = logging.getLogger("rtdp.waves")


def wave_offset_ms(waves_config: WaveConfig, wave: int) -> int:
    offsets = {2: waves_config.wave2_offset_s, 3: waves_config.wave3_offset_s}
    if wave not in offsets:
        raise ValueError(f"catch-up waves are 2 and 3, not {wave}")
    return int(offsets[wave] * 1000)


def run_catchup(
    settings: Settings,
    source: Source,
    namespace: str,
    waves_config: WaveConfig,
    wave: int,
    clock_ms: Callable[[], int] = now_ms,
) -> list[LogRow]:
    """Plan and execute every window of this wave that has closed; returns their log rows."""
    state = CollectionState(settings.collection.state_url)
    try:
        with exclusive(settings.run_dir, source.name, wave):
            until = clock_ms() - wave_offset_ms(waves_config, wave)
            window_ms = int(waves_config.window_s * 1000)
            origin = state.origin(source.name, 1)
            first_start = origin if origin is not None else until - window_ms
            state.plan_windows(
                source.name, wave, until, window_ms, int(waves_config.max_window_s * 1000), first_start_ms=first_start
            )
            if state.next_window(source.name, wave) is None:
                return []
            publisher = Publisher(settings.kafka, client_id=f"rtdp-wave{wave}-{source.name}")
            try:
                context = WindowContext(
                    source,
                    namespace,
                    PointValidator(settings.validation),
                    publisher,
                    state,
                    clock_ms,
                    # rtdp.collect.* for the operations dashboard, as wave 1 publishes them.
                    on_window=tsdb_sink(settings.tsdb.realtime),
                    packer=batch_packer(settings.collection, settings.validation, publisher),
                )
                logs = drain(context, wave)
            finally:
                publisher.close()
            if wave == 3:
                # Wave 3 is the last reader of this source's windows: their seen keys are no longer
                # needed, unless wave 2 has not read them yet (it may be catching up, e.g. a history).
                # Only this source's: another source's wave 3 may not have read its windows yet.
                wave2_until = state.covered_until(source.name, 2) or 0
                margin_ms = int(settings.collection.seen_retention_margin_s * 1000)
                state.prune(source.name, min(until, wave2_until) - margin_ms)
            return logs
    finally:
        state.dispose()
