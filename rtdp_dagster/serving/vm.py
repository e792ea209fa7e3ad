"""The router's VictoriaMetrics client: Prometheus-API reads under a deadline, with errors mapped.

A backend that cannot be reached answers 502, one that is too slow 504, and a query it refuses
(422, 400) a 400 carrying its message, always in OpenTSDB's error shape (ApiError).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from rtdp_dagster.serving.errors import backend_timeout, backend_unavailable, bad_request
from rtdp_dagster.serving.vm_async import AsyncVmConnections, error_text

_CONNECT_TIMEOUT_S = 3.0
# VictoriaMetrics refuses query_range results longer than -search.maxPointsPerTimeseries (30,000).
MAX_STEPS_PER_REQUEST = 10_000
# Keep-alive connections per TSDB: the router's TSDB threads plus the request threads that call inline.
_POOL_SIZE = 32
_CHUNK_BYTES = 1 << 16
_MAX_IDLE_S = 30.0
_HEADERS = {"Accept-Encoding": "identity", "Connection": "keep-alive"}


class Deadline:
    """The time left for one client request; every backend call gets at most that."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._at - time.monotonic()
        if left <= 0:
            raise backend_timeout(f"the query took longer than {self.seconds:g} s (serve.request_timeout_s)")
        return left


@dataclass
class RawSeries:
    labels: dict[str, str]
    timestamps: np.ndarray  # int64 epoch ms
    values: np.ndarray  # float64


class VmClient:
    """Keep-alive connections to one TSDB, shared by every request thread and warmed at start.

    Plain ``http.client`` connections: per call a fraction of what ``requests`` costs (its session,
    adapters and the pure-Python HTTP/1.1 parser of the installed urllib3), which on a short query
    is most of the router's own time.
    """

    def __init__(
        self, base_url: str, name: str, connections: int = _POOL_SIZE, max_response_bytes: int | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.max_response_bytes = max_response_bytes
        self._pool = _ConnectionPool(self.base_url, connections)
        # The same TSDB read on the event loop (plain http only; https reads take a worker thread).
        pool = self._pool
        self.on_loop = (
            None
            if pool.https
            else AsyncVmConnections(pool.host, pool.port or 80, pool.prefix, name, self.base_url, max_response_bytes)
        )

    def warm(self, connections: int = 4) -> None:
        """Open a few keep-alive connections now, so the first queries do not pay for the TCP handshakes."""
        self._pool.warm(connections, _CONNECT_TIMEOUT_S)

    def _call(self, method: str, path: str, params: dict, deadline: Deadline) -> bytes:
        """The whole answer of one call (at most max_response_bytes, read as it streams in)."""
        return self._request(method, path, params, deadline, self._capped)

    def _request(self, method: str, path: str, params: dict, deadline: Deadline, read: Callable) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        target = f"{self._pool.prefix}{path}"
        body: bytes | None = None
        headers = dict(_HEADERS)
        if method == "POST":
            body = query.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif query:
            target = f"{target}?{query}"
        for attempt in range(2):
            # A retry always opens a new connection: another idle one may have been closed as well.
            connection, reused = self._pool.get(min(_CONNECT_TIMEOUT_S, deadline.remaining()), fresh=attempt > 0)
            try:
                if connection.sock is None:
                    connection.connect()  # within the connect timeout the connection was made with
                connection.timeout = deadline.remaining()  # sending, and each read
                if connection.sock is not None:
                    connection.sock.settimeout(connection.timeout)
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
            except TimeoutError:
                connection.close()
                raise backend_timeout(f"the {self.name} TSDB at {self.base_url} did not answer in time") from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if reused and attempt == 0:  # a keep-alive connection the TSDB had closed: once more on a new one
                    continue
                raise backend_unavailable(
                    f"the {self.name} TSDB at {self.base_url} cannot be reached: {type(exc).__name__}"
                ) from None
            try:
                if response.status in (400, 422):
                    raise bad_request(f"the {self.name} TSDB refused the query: {_error_text(response)}")
                if response.status >= 300:
                    raise backend_unavailable(
                        f"the {self.name} TSDB failed: HTTP {response.status} {_error_text(response)}"
                    )
                result = read(response, deadline)
            except TimeoutError:
                connection.close()
                raise backend_timeout(f"the {self.name} TSDB at {self.base_url} did not answer in time") from None
            except (OSError, http.client.HTTPException):
                connection.close()
                raise backend_unavailable(f"the {self.name} TSDB broke off its answer") from None
            except BaseException:
                connection.close()
                raise
            if response.will_close or not response.isclosed():
                connection.close()
            else:
                self._pool.put(connection)
            return result
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, params: dict, deadline: Deadline) -> dict:
        return self._payload(self._call(method, path, params, deadline), path)

    def _payload(self, content: bytes, path: str) -> dict:
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise backend_unavailable(f"the {self.name} TSDB answered {path} with invalid JSON") from None
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise backend_unavailable(f"the {self.name} TSDB answered {path} with an error: {str(payload)[:300]}")
        return payload

    def query_range(self, expr: str, start_ms: int, end_ms: int, step_ms: int, deadline: Deadline) -> list[RawSeries]:
        """Evaluate expr at start, start+step, ..., end (no start alignment: nocache=1)."""
        return self.matrix(self.query_range_bytes(expr, start_ms, end_ms, step_ms, deadline))

    def matrix(self, content: bytes) -> list[RawSeries]:
        """A query_range answer as arrays."""
        found = fast_matrix(content)
        if found is not None:
            return found
        return _matrix(self._payload(content, "/api/v1/query_range")["data"]["result"])

    def query_range_bytes(self, expr: str, start_ms: int, end_ms: int, step_ms: int, deadline: Deadline) -> bytes:
        """VictoriaMetrics' query_range answer as it came (JSON)."""
        return self._call("POST", "/api/v1/query_range", _range_params(expr, start_ms, end_ms, step_ms), deadline)

    async def query_range_bytes_on_loop(
        self, expr: str, start_ms: int, end_ms: int, step_ms: int, deadline: Deadline
    ) -> bytes:
        """query_range_bytes read on the running event loop (on_loop must be set)."""
        assert self.on_loop is not None
        form = urllib.parse.urlencode(_range_params(expr, start_ms, end_ms, step_ms)).encode()
        return await self.on_loop.post("/api/v1/query_range", form, deadline)

    def _capped(self, response: http.client.HTTPResponse, deadline: Deadline) -> bytes:
        """The body, refused past max_response_bytes: a query over too many series or points is stopped
        while it streams in, before the router holds it (and before it is parsed)."""
        chunks, size = [], 0
        while chunk := response.read1(_CHUNK_BYTES):
            deadline.remaining()
            size += len(chunk)
            if self.max_response_bytes is not None and size > self.max_response_bytes:
                raise bad_request(
                    f"the query selects more series and points than the router holds "
                    f"({self.max_response_bytes:,} bytes from the {self.name} TSDB, set by serve.max_series "
                    "and serve.max_datapoints); narrow the tag filters or use a coarser downsample"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def instant(self, expr: str, at_ms: int, deadline: Deadline) -> list[tuple[dict[str, str], int, float]]:
        payload = self._json(
            "POST", "/api/v1/query", {"query": expr, "time": _seconds(at_ms), "nocache": "1"}, deadline
        )
        result = []
        for item in payload["data"]["result"]:
            ts, value = item["value"]
            result.append((item["metric"], round(float(ts) * 1000), float(value)))
        return result

    def export(
        self, selector: str, start_ms: int, end_ms: int, deadline: Deadline, max_samples: int
    ) -> list[RawSeries]:
        """Every raw sample of the matching series in [start, end]; a 400 beyond max_samples."""

        def read(response: http.client.HTTPResponse, deadline: Deadline) -> list[RawSeries]:
            series, samples = [], 0
            for line in _lines(response, deadline):
                record = orjson.loads(line)
                samples += len(record["timestamps"])
                if samples > max_samples:
                    raise bad_request(
                        f"the query reads more than {max_samples:,} raw points; add a downsample "
                        "(e.g. 1m-avg) or narrow the range or the tag filters"
                    )
                series.append(
                    RawSeries(
                        record["metric"],
                        np.asarray(record["timestamps"], dtype=np.int64),
                        np.asarray(record["values"], dtype=np.float64),
                    )
                )
            return series

        params = {"match[]": selector, "start": _seconds(start_ms), "end": _seconds(end_ms)}
        return self._request("POST", "/api/v1/export", params, deadline, read)

    def label_values(self, label: str, match: str | None, start_ms: int, deadline: Deadline) -> list[str]:
        params: dict = {"start": _seconds(start_ms)}
        if match:
            params["match[]"] = match
        return list(self._json("GET", f"/api/v1/label/{label}/values", params, deadline)["data"])

    def labels(self, start_ms: int, deadline: Deadline) -> list[str]:
        return list(self._json("GET", "/api/v1/labels", {"start": _seconds(start_ms)}, deadline)["data"])

    def series(self, match: str, start_ms: int, deadline: Deadline) -> list[dict[str, str]]:
        return list(
            self._json("POST", "/api/v1/series", {"match[]": match, "start": _seconds(start_ms)}, deadline)["data"]
        )


def steps(start_ms: int, end_ms: int, step_ms: int) -> Iterator[tuple[int, int]]:
    """(first, last) evaluation times of query_range chunks of at most MAX_STEPS_PER_REQUEST steps."""
    first = start_ms
    while first <= end_ms:
        last = min(end_ms, first + (MAX_STEPS_PER_REQUEST - 1) * step_ms)
        yield first, last
        first = last + step_ms


_MATRIX_START = b'{"status":"success","data":{"resultType":"matrix","result":['
_SERIES = b'{"metric":'
# A raw quote never occurs inside a JSON string, so these byte sequences only occur as structure.
_VALUES = b'},"values":[['
_NEXT_SERIES = b'"]]},{"metric":'  # a series' last value, its end and the next series' start
_LAST_SERIES = b'"]]}]'  # the last series' last value, its end and the end of the result


def matrix_texts(content: bytes) -> tuple[list[bytes], list[bytes]] | None:
    """Every series of a query_range answer as its labels (a JSON object) and its pairs as they came
    but for the outer brackets and last quote (``ts,"v"],[ts,"v``), neither parsed; None when the
    answer is not a plain matrix."""
    if not content.startswith(_MATRIX_START):
        return None
    labels: list[bytes] = []
    pairs: list[bytes] = []
    find = content.find
    at = len(_MATRIX_START)
    if content.startswith(b"]", at):
        return labels, pairs
    last = content.rfind(_LAST_SERIES)  # what follows (stats) may hold braces
    while content.startswith(_SERIES, at):
        start = at + len(_SERIES)
        cut = find(_VALUES, start)
        first = cut + len(_VALUES)
        # Pairs hold no brace: the next one opens the next series (a search for one byte, the fastest).
        at = find(b"{", first, last)
        end = last if at < 0 else at - len(_NEXT_SERIES) + len(_SERIES)
        if cut < 0 or end < first or find(b'"values":[', start, cut) >= 0:  # a series without values
            return None
        if at >= 0 and not content.startswith(_NEXT_SERIES, end):
            return None
        labels.append(content[start : cut + 1])
        pairs.append(content[first:end])
        if at < 0:
            return labels, pairs
    return None


def fast_matrix(content: bytes) -> list[RawSeries] | None:
    """VictoriaMetrics' query_range answer as arrays without a Python object per sample: the values
    of every series, stripped of brackets and quotes, are parsed as one JSON list of numbers. None
    when the answer is not a plain matrix of finite numbers (the general path handles it)."""
    found = matrix_texts(content)
    if found is None:
        return None
    texts = [pairs.translate(None, b'[]"') for pairs in found[1]]
    lengths = [text.count(b",") // 2 + 1 for text in texts]
    try:
        flat = np.array(orjson.loads(b"[" + b",".join(texts) + b"]"), dtype=np.float64)
        metrics = orjson.loads(b"[" + b",".join(found[0]) + b"]")
    except orjson.JSONDecodeError:  # NaN or Inf among the values
        return None
    if len(flat) != 2 * sum(lengths):
        return None
    if not metrics:
        return []
    timestamps = np.rint(flat[0::2] * 1000).astype(np.int64)
    values = np.ascontiguousarray(flat[1::2])
    bounds = np.cumsum(lengths)[:-1]
    return [
        RawSeries(metric, stamps, numbers)
        for metric, stamps, numbers in zip(metrics, np.split(timestamps, bounds), np.split(values, bounds), strict=True)
    ]


def _matrix(result: list[dict]) -> list[RawSeries]:
    """A query_range matrix as arrays: every series' timestamps and values converted in one call each."""
    if not result:
        return []
    pairs = [item.get("values") or [] for item in result]
    flat = [pair for series in pairs for pair in series]
    seconds = np.array([pair[0] for pair in flat], dtype=np.float64)
    timestamps = np.rint(seconds * 1000).astype(np.int64)
    values = _numbers([pair[1] for pair in flat])
    bounds = np.cumsum([len(series) for series in pairs])[:-1]
    return [
        RawSeries(item["metric"], stamps, numbers)
        for item, stamps, numbers in zip(result, np.split(timestamps, bounds), np.split(values, bounds), strict=True)
    ]


def _numbers(texts: list[str]) -> np.ndarray:
    """VictoriaMetrics' sample values (decimal strings) as floats: parsed by orjson in one call, which is
    several times faster than one float() per value; NaN and Inf are not JSON and take the slow path."""
    try:
        return np.array(orjson.loads("[" + ",".join(texts) + "]"), dtype=np.float64)
    except orjson.JSONDecodeError:
        return np.array(texts, dtype=np.float64)


def _lines(response: http.client.HTTPResponse, deadline: Deadline) -> Iterator[bytes]:
    pending = b""
    while chunk := response.read1(_CHUNK_BYTES):
        deadline.remaining()
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending


def _range_params(expr: str, start_ms: int, end_ms: int, step_ms: int) -> dict[str, str]:
    return {"query": expr, "start": _seconds(start_ms), "end": _seconds(end_ms), "step": f"{step_ms}ms", "nocache": "1"}


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _error_text(response: http.client.HTTPResponse) -> str:
    return error_text(response.read(64 * 1024))


class _ConnectionPool:
    """Idle keep-alive connections to one TSDB, the most recently used first; at most ``size`` kept, none
    idle longer than _MAX_IDLE_S (VictoriaMetrics closes idle connections after a minute, any after two)."""

    def __init__(self, base_url: str, size: int) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.size = size
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def get(self, connect_timeout_s: float, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (the TSDB may have closed it since)."""
        stale = []
        with self._lock:
            while self._idle and not fresh:
                since, connection = self._idle.pop()
                if time.monotonic() - since < _MAX_IDLE_S:
                    return connection, True
                stale.append(connection)
        for connection in stale:
            connection.close()
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=connect_timeout_s), False
        return http.client.HTTPConnection(self.host, self.port, timeout=connect_timeout_s), False

    def put(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append((time.monotonic(), connection))
                return
        connection.close()

    def warm(self, connections: int, timeout_s: float) -> None:
        opened = []
        for _ in range(connections):
            connection, _ = self.get(timeout_s)
            # A TSDB that is down is reported by the query that needs it.
            with contextlib.suppress(OSError):
                connection.connect()  # http.client sets TCP_NODELAY
                opened.append(connection)
        for connection in opened:
            self.put(connection)
