"""The router's VictoriaMetrics client: Prometheus-API reads under a deadline, with errors mapped.

A backend that cannot be reached answers 502, one that is too slow 504, and a query it refuses
(422, 400) a 400 carrying its message, always in OpenTSDB's error shape (ApiError).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson
import requests

from rtdp_dagster.serving.errors import backend_timeout, backend_unavailable, bad_request

_CONNECT_TIMEOUT_S = 3.0
# VictoriaMetrics refuses query_range results longer than -search.maxPointsPerTimeseries (30,000).
MAX_STEPS_PER_REQUEST = 10_000


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
    def __init__(self, base_url: str, name: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _call(self, method: str, path: str, params: dict, deadline: Deadline, stream: bool = False):
        url = f"{self.base_url}{path}"
        timeout = (min(_CONNECT_TIMEOUT_S, deadline.remaining()), deadline.remaining())
        try:
            if method == "POST":
                response = self._session().post(url, data=params, timeout=timeout, stream=stream)
            else:
                response = self._session().get(url, params=params, timeout=timeout, stream=stream)
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
        response = self._call(method, path, params, deadline)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise backend_unavailable(f"the {self.name} TSDB answered {path} with invalid JSON") from None
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise backend_unavailable(f"the {self.name} TSDB answered {path} with an error: {str(payload)[:300]}")
        return payload

    def query_range(self, expr: str, start_ms: int, end_ms: int, step_ms: int, deadline: Deadline) -> list[RawSeries]:
        """Evaluate expr at start, start+step, ..., end (no start alignment: nocache=1)."""
        payload = self._json(
            "POST",
            "/api/v1/query_range",
            {
                "query": expr,
                "start": _seconds(start_ms),
                "end": _seconds(end_ms),
                "step": f"{step_ms}ms",
                "nocache": "1",
            },
            deadline,
        )
        return [_matrix_series(item) for item in payload["data"]["result"]]

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


def _matrix_series(item: dict) -> RawSeries:
    values = item.get("values") or []
    timestamps = np.fromiter((round(float(pair[0]) * 1000) for pair in values), dtype=np.int64, count=len(values))
    numbers = np.fromiter((float(pair[1]) for pair in values), dtype=np.float64, count=len(values))
    return RawSeries(item["metric"], timestamps, numbers)


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
