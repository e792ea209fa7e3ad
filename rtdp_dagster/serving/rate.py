"""Rate of change per second of one series, with OpenTSDB's counter options."""

from __future__ import annotations

import numpy as np

from rtdp_dagster.serving.model import RateOptions


def rate(timestamps: np.ndarray, values: np.ndarray, options: RateOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per-second rate at each point after the first, over the points that have a value.

    NaN points (fill policies nan/null) stay NaN and are skipped for the deltas. For a counter, a
    drop is a reset: dropped with dropResets, else counted from counterMax, and a rate above a
    positive resetValue after a reset is reported as 0.
    """
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) < 2:
        keep = np.isnan(values) & (np.arange(len(values)) > (valid[0] if len(valid) else -1))
        return timestamps[keep], values[keep]
    out = np.full(len(values), np.nan)
    times, numbers = timestamps[valid], values[valid]
    delta = np.diff(numbers)
    seconds = np.diff(times) / 1000.0
    rates = delta / seconds
    keep_valid = np.ones(len(delta), dtype=bool)
    if options.counter:
        resets = delta < 0
        if options.drop_resets:
            keep_valid &= ~resets
        else:
            wrapped = (options.counter_max - numbers[:-1] + numbers[1:]) / seconds
            if options.reset_value > 0:
                wrapped = np.where(wrapped > options.reset_value, 0.0, wrapped)
            rates = np.where(resets, wrapped, rates)
    out[valid[1:]] = np.where(keep_valid, rates, np.nan)
    # The first valued point has no rate; dropped resets are left out; fill NaNs after it stay.
    keep = np.zeros(len(values), dtype=bool)
    keep[valid[1:][keep_valid]] = True
    keep |= np.isnan(values) & (np.arange(len(values)) > valid[0])
    return timestamps[keep], out[keep]
