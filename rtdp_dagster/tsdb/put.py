"""Writing points to an OpenTSDB-protocol TSDB (VictoriaMetrics, OpenTSDB) in bulk.

Telnet ``put`` lines are the fast path (VictoriaMetrics took ~1 M points/s here); HTTP
``/api/put`` is the portable one. Both retry with back-off a bounded number of times and then
raise, so a caller can count and repair what could not be written instead of losing it.
opentsdb-py is not used (README, "What runs locally"): it drops the oldest point when its queue is
full, confirms no telnet delivery and reconnects forever, and its HTTP mode loops on VictoriaMetrics'
204 replies.
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
import requests

# OpenTSDB's allowed characters for metric names, tag keys and tag values.
_VALID_NAME = re.compile(r"^[A-Za-z0-9\-_./]+$")
_JSON = {"Content-Type": "application/json"}


class TsdbWriteError(Exception):
    """Points could not be written after every retry."""


@dataclass(frozen=True)
class TsdbPoint:
    metric: str
    timestamp_ms: int
    value: float
    tags: Mapping[str, str]


def validate_point(point: TsdbPoint) -> None:
    if not _VALID_NAME.match(point.metric):
        raise ValueError(f"metric name {point.metric!r} has characters OpenTSDB does not accept")
    if not point.tags:
        raise ValueError(f"{point.metric}: OpenTSDB needs at least one tag")
    for key, value in point.tags.items():
        if not _VALID_NAME.match(key) or not _VALID_NAME.match(str(value)):
            raise ValueError(f"{point.metric}: tag {key}={value!r} has characters OpenTSDB does not accept")
    if not math.isfinite(point.value):
        raise ValueError(f"{point.metric}: value {point.value!r} is not a finite number")


def telnet_line(point: TsdbPoint) -> str:
    # VictoriaMetrics reads telnet timestamps as whole seconds; refuse rather than truncate.
    seconds, millis = divmod(point.timestamp_ms, 1000)
    if millis:
        raise ValueError(f"{point.metric}: telnet put carries whole seconds only; use HTTP put for ms timestamps")
    tags = " ".join(f"{key}={value}" for key, value in sorted(point.tags.items()))
    return f"put {point.metric} {seconds} {point.value!r} {tags}\n"


def _with_retries(action, what: str, attempts: int, backoff_s: float) -> None:
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            action()
            return
        except (OSError, requests.RequestException, TsdbWriteError) as exc:
            if attempt == attempts:
                raise TsdbWriteError(f"{what}: failed after {attempts} attempts: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class TelnetPutWriter:
    """Bulk writer over the OpenTSDB telnet protocol; one connection, re-opened on error."""

    def __init__(self, host: str, port: int, timeout_s: float = 10.0, attempts: int = 4, backoff_s: float = 0.2):
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.attempts, self.backoff_s = attempts, backoff_s
        self._socket: socket.socket | None = None

    def _connection(self) -> socket.socket:
        if self._socket is None:
            self._socket = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        return self._socket

    def write(self, points: Iterable[TsdbPoint], chunk: int = 10_000) -> int:
        """Write all points; returns how many. Raises TsdbWriteError after the last retry."""
        written = 0
        batch: list[str] = []
        for point in points:
            validate_point(point)
            batch.append(telnet_line(point))
            if len(batch) >= chunk:
                self._send("".join(batch))
                written += len(batch)
                batch = []
        if batch:
            self._send("".join(batch))
            written += len(batch)
        return written

    def _send(self, payload: str) -> None:
        data = payload.encode()

        def attempt() -> None:
            try:
                self._connection().sendall(data)
            except OSError:
                self.close()
                raise

        # Re-sending a chunk after a broken connection may repeat points; an equal
        # (metric, tags, timestamp, value) is idempotent in the TSDB.
        _with_retries(attempt, f"telnet put to {self.host}:{self.port}", self.attempts, self.backoff_s)

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None

    def __enter__(self) -> TelnetPutWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _post_put(
    session: requests.Session, base_url: str, data: bytes, timeout_s: float, attempts: int, backoff_s: float
) -> None:
    def attempt() -> None:
        response = session.post(f"{base_url.rstrip('/')}/api/put", data=data, headers=_JSON, timeout=timeout_s)
        if response.status_code >= 500:
            raise TsdbWriteError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            # A client error will not get better by retrying.
            raise ValueError(f"/api/put rejected the points: HTTP {response.status_code} {response.text[:200]}")

    _with_retries(attempt, f"HTTP put to {base_url}", attempts, backoff_s)


def http_put(
    base_url: str,
    points: Sequence[TsdbPoint],
    timeout_s: float = 10.0,
    attempts: int = 4,
    backoff_s: float = 0.2,
    chunk: int = 5_000,
) -> int:
    """POST points to ``/api/put`` in chunks; returns how many were written."""
    session = requests.Session()
    for point in points:
        validate_point(point)
    for start in range(0, len(points), chunk):
        body = [
            {"metric": p.metric, "timestamp": p.timestamp_ms, "value": p.value, "tags": dict(p.tags)}
            for p in points[start : start + chunk]
        ]
        _post_put(session, base_url, orjson.dumps(body), timeout_s, attempts, backoff_s)
    return len(points)


def http_put_json(
    session: requests.Session,
    base_url: str,
    points_json: Sequence[str],
    timeout_s: float = 10.0,
    attempts: int = 4,
    backoff_s: float = 0.2,
) -> int:
    """POST points already encoded as OpenTSDB JSON objects (validated by whoever encoded them)
    to ``/api/put`` in one request; returns how many were written."""
    _post_put(session, base_url, ("[" + ",".join(points_json) + "]").encode(), timeout_s, attempts, backoff_s)
    return len(points_json)
