"""Identity of a series and of a point, shared by collectors, the stream and the batch layer."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def series_key(metric: str, tags: Mapping[str, str]) -> str:
    """Readable series identity, also the Kafka message key (one series stays in one partition)."""
    return metric + "|" + ",".join(f"{key}={tags[key]}" for key in sorted(tags))


def point_key_of_series(series: str, ts_ms: int) -> str:
    return hashlib.blake2b(f"{series}|{ts_ms}".encode(), digest_size=16).hexdigest()


def point_key_prefix(series: str) -> hashlib.blake2b:
    """The hash of ``point_key_of_series`` fed with all but the timestamp: a copy of it updated with
    ``b"%d" % ts_ms`` gives the point's key in hex, for one series' many points."""
    return hashlib.blake2b(f"{series}|".encode(), digest_size=16)


def point_key(metric: str, tags: Mapping[str, str], ts_ms: int) -> str:
    """Deterministic identity of one point: the same point read by two waves has the same key."""
    return point_key_of_series(series_key(metric, tags), ts_ms)
