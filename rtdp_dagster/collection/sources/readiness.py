"""When a row becomes visible: event time plus a seeded delay (fixed, jitter, or a late tail).

Replays and the synthetic generator simulate a source that publishes late: a row is readable
only once ``now_ms >= ts_ms + delay_ms``. The delay is drawn from two uniforms derived from the
row's identity, so re-reading a window gives the same answer whatever the read order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from rtdp_dagster.collection.sources.seeded import F64, U64, keyed, uniform
from rtdp_dagster.config.sources import ReadinessDelayConfig

# Purposes of the two draws, so the "is it late" draw and the "how late" draw are independent.
_LATE_SALT = 0x6C617465
_AMOUNT_SALT = 0x616D6F75


def delays_ms(config: ReadinessDelayConfig, row_keys: U64) -> npt.NDArray[np.int64]:
    """Delay in whole ms of each row; row_keys identify rows (already mixed, from ``keyed``)."""
    delays: F64 = np.full(row_keys.shape, config.fixed_s * 1000.0)
    if config.late_share <= 0 and config.jitter_s <= 0:
        return delays.astype(np.int64)
    amount = uniform(keyed(_AMOUNT_SALT, row_keys))
    extra = amount * (config.jitter_s * 1000.0)
    if config.late_share > 0:
        is_late = uniform(keyed(_LATE_SALT, row_keys)) < config.late_share
        # Log-uniform: as many rows late by 30-300 s as by 300-3000 s; a tail, not a plateau.
        low, high = np.log(config.late_min_s * 1000.0), np.log(config.late_max_s * 1000.0)
        late = np.exp(low + amount * (high - low))
        extra = np.where(is_late, late, extra)
    return (delays + extra).astype(np.int64)
