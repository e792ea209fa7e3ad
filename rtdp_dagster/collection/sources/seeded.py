"""Counter-based random numbers: a draw depends only on its key, never on the order of draws.

Replays and the synthetic generator must give the same "random" delay or value for a row however
often and in whatever order windows are read. A sequential generator cannot do that; hashing the
row's identity (seed, stream, index) with the SplitMix64 finaliser can, and vectorises in numpy.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(x: U64) -> U64:
    """SplitMix64 of each element (uint64 arithmetic wraps, which is what the hash wants)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def mix_int(*parts: int) -> int:
    """Fold integers into one 64-bit key (scalar version of chaining ``mix``)."""
    state = 0
    for part in parts:
        state = int(mix(np.array([(state ^ part) & _MASK64], dtype=np.uint64))[0])
    return state


def text_key(text: str) -> int:
    """A stable 64-bit key for a name (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def keyed(base: int | U64, counters: npt.NDArray[np.int64] | U64) -> U64:
    """Keys for counters (row indices, time steps) under a base key; broadcasts like numpy."""
    base_array = np.asarray(base, dtype=np.uint64)
    return mix(base_array ^ np.asarray(counters).astype(np.uint64))


def uniform(keys: U64) -> F64:
    """Floats in [0, 1) from mixed keys (``keyed``): the top 53 bits, each float exactly representable."""
    return (keys >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
