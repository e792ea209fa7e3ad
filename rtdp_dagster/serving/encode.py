"""OpenTSDB result objects encoded to JSON straight from numpy arrays.

orjson writes each array in one call (numbers exactly as it writes Python floats and ints, NaN as
null); the ``"ts":value`` pairs are then joined by bytes operations that run in C, so a response
never holds a Python object per data point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_PAIR = b'":'.join
_ARRAY_PAIR = b",".join


@dataclass
class QueryResult:
    """One result object of /api/query: its fields but dps, and the points as arrays."""

    head: dict  # metric, tags, aggregateTags
    timestamps: np.ndarray  # int64, in the response's resolution (s or ms), ascending
    values: np.ndarray  # float64, NaN -> null
    query: dict | None = None  # showQuery's description

    def __len__(self) -> int:
        return len(self.timestamps)


@dataclass
class EncodedResults:
    """Result objects of /api/query already encoded (passthrough.py): their JSON joined by commas."""

    text: bytes
    count: int  # result objects
    points: int

    def __len__(self) -> int:
        return self.points


def encode_results(results: Sequence[QueryResult | EncodedResults], arrays: bool) -> bytes:
    return b"[" + b",".join(text for result in results if (text := _encode_one(result, arrays))) + b"]"


def _encode_one(result: QueryResult | EncodedResults, arrays: bool) -> bytes:
    if isinstance(result, EncodedResults):
        return result.text  # empty when no series
    head = orjson.dumps(result.head)[:-1]  # without its closing brace: dps (and query) follow
    tail = b"}" if result.query is None else b',"query":' + orjson.dumps(result.query) + b"}"
    return head + b',"dps":' + encode_dps(result.timestamps, result.values, arrays) + tail


def encode_dps(timestamps: np.ndarray, values: np.ndarray, arrays: bool) -> bytes:
    """``{"ts":value,...}``, or ``[[ts,value],...]`` with arrays."""
    if len(timestamps) == 0:
        return b"[]" if arrays else b"{}"
    stamps = orjson.dumps(np.ascontiguousarray(timestamps, dtype=np.int64), option=_NUMPY)[1:-1].split(b",")
    numbers = orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=_NUMPY)[1:-1].split(b",")
    if arrays:
        return b"[[" + b"],[".join(map(_ARRAY_PAIR, zip(stamps, numbers, strict=True))) + b"]]"
    return b'{"' + b',"'.join(map(_PAIR, zip(stamps, numbers, strict=True))) + b"}"
