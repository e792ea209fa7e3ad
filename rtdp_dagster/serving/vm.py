"""The router's VictoriaMetrics client: Prometheus-API reads under a deadline, with errors mapped.

A backend that cannot be reached answers 502, one that is too slow 504, and a query it refuses
(422, 400) a 400 carrying its message, always in OpenTSDB's error shape (ApiError).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson
import requests
import requests.adapters

from rtdp_dagster.serving.errors import backend_timeout, backend_unavailable, bad_request

_CONNECT_TIMEOUT_S = 3.0
# VictoriaMetrics refuses query_range results longer than -search.maxPointsPerTimeseries (30,000).
MAX_STEPS_PER_REQUEST = 10_000
# Keep-alive connections per TSDB: the router's TSDB threads plus the request threads that call inline.
_POOL_SIZE = 32


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
    """One keep-alive connection pool per TSDB, shared by every request thread and warmed at start."""

    def __init__(
        self, base_url: str, name: str, connections: int = _POOL_SIZE, max_response_bytes: int | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.max_response_bytes = max_response_bytes
        self._shared = requests.Session()
        # Uncompressed: on the loopback, gzip costs both sides more CPU than it saves in transfer.
        self._shared.headers["Accept-Encoding"] = "identity"
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections, pool_block=False)
        self._shared.mount("http://", adapter)
        self._shared.mount("https://", adapter)

    def warm(self, connections: int = 4) -> None:
        """Open a few keep-alive connections now, so the first queries do not pay for the TCP handshakes."""

        def ping() -> None:
            # A TSDB that is down is reported by the query that needs it.
            with contextlib.suppress(requests.RequestException):
                self._shared.get(f"{self.base_url}/health", timeout=_CONNECT_TIMEOUT_S).close()

        threads = [threading.Thread(target=ping, daemon=True) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(_CONNECT_TIMEOUT_S)

    def _call(self, method: str, path: str, params: dict, deadline: Deadline, stream: bool = False):
        url = f"{self.base_url}{path}"
        timeout = (min(_CONNECT_TIMEOUT_S, deadline.remaining()), deadline.remaining())
        try:
            if method == "POST":
                response = self._shared.post(url, data=params, timeout=timeout, stream=stream)
            else:
                response = self._shared.get(url, params=params, timeout=timeout, stream=stream)
        except requests.Timeout:
            raise backend_timeout(f"the {self.name} TSDB at {self.base_url} did not answer in time") from None
        except requests.RequestException as exc:
            raise backend_unavailable(
                f"the {self.name} TSDB at {self.base_url} cannot be reached: {type(exc).__name__}"
            ) from None
        if response.status_code in (400, 422):
            raise bad_request(f"the {self.name} TSDB refused the query: {_error_text(response)}")
        if response.status_code >= 300:
            raise backend_unavailable(
                f"the {self.name} TSDB failed: HTTP {response.status_code} {_error_text(response)}"
            )
        return response

    def _json(self, method: str, path: str, params: dict, deadline: Deadline) -> dict:
        return self._payload(self._call(method, path, params, deadline).content, path)

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
        params = {
            "query": expr,
            "start": _seconds(start_ms),
            "end": _seconds(end_ms),
            "step": f"{step_ms}ms",
            "nocache": "1",
        }
        response = self._call("POST", "/api/v1/query_range", params, deadline, stream=True)
        content = self._capped(response, deadline)
        found = fast_matrix(content)
        if found is not None:
            return found
        return _matrix(self._payload(content, "/api/v1/query_range")["data"]["result"])

    def _capped(self, response: requests.Response, deadline: Deadline) -> bytes:
        """The body, refused past max_response_bytes: a query over too many series or points is stopped
        while it streams in, before the router holds it (and before it is parsed)."""
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(chunk_size=1 << 16):
                deadline.remaining()
                size += len(chunk)
                if self.max_response_bytes is not None and size > self.max_response_bytes:
                    raise bad_request(
                        f"the query selects more series and points than the router holds "
                        f"({self.max_response_bytes:,} bytes from the {self.name} TSDB, set by serve.max_series "
                        "and serve.max_datapoints); narrow the tag filters or use a coarser downsample"
                    )
                chunks.append(chunk)
        except requests.RequestException:
            raise backend_unavailable(f"the {self.name} TSDB broke off its answer") from None
        finally:
            response.close()
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
        response = self._call(
            "POST",
            "/api/v1/export",
            {
                "match[]": selector,
                "start": _seconds(start_ms),
                "end": _seconds(end_ms),
            },
            deadline,
            stream=True,
        )
        series, samples = [], 0
        try:
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
        except requests.RequestException:
            raise backend_unavailable(f"the {self.name} TSDB broke off the export") from None
        finally:
            response.close()
        return series

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
_VALUES = b'},"values":['
_PAIRS_END = b"]]"


def fast_matrix(content: bytes) -> list[RawSeries] | None:
    """VictoriaMetrics' query_range answer as arrays without a Python object per sample: the values
    of every series, stripped of brackets and quotes, are parsed as one JSON list of numbers. None
    when the answer is not a plain matrix of finite numbers (the general path handles it)."""
    if not content.startswith(_MATRIX_START):
        return None
    labels, texts, lengths = [], [], []
    for chunk in content[len(_MATRIX_START) :].split(_SERIES)[1:]:
        cut = chunk.find(_VALUES)
        end = chunk.find(_PAIRS_END, cut)
        if cut < 0 or end < 0:
            return None
        labels.append(chunk[: cut + 1])
        text = chunk[cut + len(_VALUES) : end + 1].translate(None, b'[]"')
        texts.append(text)
        lengths.append(text.count(b",") // 2 + 1 if text else 0)
    try:
        flat = np.array(orjson.loads(b"[" + b",".join(text for text in texts if text) + b"]"), dtype=np.float64)
        metrics = [orjson.loads(text) for text in labels]
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


def _lines(response: requests.Response, deadline: Deadline) -> Iterator[bytes]:
    for line in response.iter_lines(chunk_size=1 << 16):
        deadline.remaining()
        if line.strip():
            yield line


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _error_text(response: requests.Response) -> str:
    try:
        payload = orjson.loads(response.content)
        if isinstance(payload, dict) and "error" in payload:
            return str(payload["error"])[:500]
    except orjson.JSONDecodeError:
        pass
    return response.text[:500]
