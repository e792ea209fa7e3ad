"""Value shapes of the synthetic generator, as functions of (series key, time step) only.

Every shape is computed directly for any step, without walking from an origin, so a point's
value never depends on which windows were read before or in which order. A "random walk" is
therefore a sum of octaves of seeded value noise (random values at lattice steps 1, 2, 4, ...,
interpolated linearly, amplitude growing with the square root of the spacing as a walk's spread
does): it wanders like a walk over hours but stays near its level. A counter is a monotonic
function of the step (a steady rate plus a wobble too small to ever decrease it) measured from
the last reset; one reset falls at a seeded moment in every ``reset_every_s`` period.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from rtdp_dagster.collection.sources.seeded import F64, U64, keyed, mix, uniform
from rtdp_dagster.config.sources import SyntheticMetricConfig

I64 = npt.NDArray[np.int64]

# Purposes of per-series and per-point draws.
_PHASE, _LEVEL, _NOISE, _RATE, _RESET, _OCTAVE = (0x5048, 0x4C45, 0x4E4F, 0x5241, 0x5245, 0x4F43)
_WALK_OCTAVES = range(0, 12)
_COUNTER_OCTAVES = range(3, 9)
PERCENT_BOUNDS = (0.0, 100.0)


def _per_series(series_keys: U64, purpose: int) -> F64:
    """One uniform per series, as a column to broadcast against steps."""
    return uniform(keyed(purpose, series_keys))[:, None]


def _point_noise(series_keys: U64, steps: I64) -> F64:
    """Uniform in [-1, 1) per (series, step)."""
    base = mix(series_keys ^ np.uint64(_NOISE))[:, None]
    return 2.0 * uniform(keyed(base, steps)) - 1.0


def value_noise(series_keys: U64, steps: I64, octaves: range, scale: float | F64, growth: float) -> F64:
    """Sum over octaves L of seeded values in [-1, 1] at multiples of 2**L steps, linearly
    interpolated, with amplitude scale * (2**L) ** growth. steps: (K,) for all series, or (S, K)."""
    total: F64 = np.zeros((series_keys.size, steps.shape[-1]))
    for octave in octaves:
        spacing = 1 << octave
        base = mix(series_keys ^ np.uint64(_OCTAVE + octave))[:, None]
        lattice = steps >> octave
        fraction = (steps & (spacing - 1)) / spacing
        left = 2.0 * uniform(keyed(base, lattice)) - 1.0
        right = 2.0 * uniform(keyed(base, lattice + 1)) - 1.0
        total += (left + (right - left) * fraction) * spacing**growth
    return total * scale


def _sine(metric: SyntheticMetricConfig, series_keys: U64, steps: I64, cadence_ms: int) -> F64:
    phase = 2 * math.pi * _per_series(series_keys, _PHASE)
    angle = (2 * math.pi * cadence_ms / (metric.period_s * 1000.0)) * steps.astype(np.float64)
    return metric.amplitude * np.sin(angle + phase)


def _counter_position(series_keys: U64, steps: I64, rate: F64) -> F64:
    # Octave L moves at most 2 * amplitude / 2**L per step; with amplitude rate * 2**L / (4 * n)
    # the n octaves together move at most rate / 2 per step, so the position never decreases.
    wobble = value_noise(series_keys, steps, _COUNTER_OCTAVES, rate / (4 * len(_COUNTER_OCTAVES)), growth=1.0)
    return rate * steps + wobble


def _counter(metric: SyntheticMetricConfig, series_keys: U64, steps: I64, cadence_ms: int) -> F64:
    rate = metric.rate * (0.5 + _per_series(series_keys, _RATE))
    period = max(2, round(metric.reset_every_s * 1000 / cadence_ms))
    segment = np.broadcast_to(steps // period, (series_keys.size, steps.size))
    reset_base = mix(series_keys ^ np.uint64(_RESET))[:, None]

    def reset_step(segments: I64) -> I64:
        return segments * period + (uniform(keyed(reset_base, segments)) * period).astype(np.int64)

    current = reset_step(segment)
    last_reset = np.where(steps >= current, current, reset_step(segment - 1))
    position = _counter_position(series_keys, np.broadcast_to(steps, last_reset.shape), rate)
    return np.floor(position) - np.floor(_counter_position(series_keys, last_reset, rate))


def shape_values(metric: SyntheticMetricConfig, series_keys: U64, steps: I64, cadence_ms: int) -> F64:
    """Values of every series of one metric at the given steps: shape (series, steps)."""
    shape = metric.shape
    if shape == "counter":
        return _counter(metric, series_keys, steps, cadence_ms)
    if shape == "sine":
        wave = _sine(metric, series_keys, steps, cadence_ms)
        return metric.level + wave + metric.noise * _point_noise(series_keys, steps)
    # Constant and random-walk series sit at different levels, spread by the amplitude.
    spread = metric.amplitude * (2.0 * _per_series(series_keys, _LEVEL) - 1.0)
    if shape == "constant":
        return np.broadcast_to(np.round(metric.level + spread), (series_keys.size, steps.size)).copy()
    walk = value_noise(series_keys, steps, _WALK_OCTAVES, metric.noise, growth=0.5)
    if shape == "random_walk":
        return metric.level + spread + walk
    # percent: a periodic swing plus a small walk, bounded like a utilisation.
    wave = _sine(metric, series_keys, steps, cadence_ms)
    return np.clip(metric.level + wave + walk / 8, *PERCENT_BOUNDS)
