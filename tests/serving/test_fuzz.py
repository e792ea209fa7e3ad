"""The router fuzzed from its published OpenAPI document, and its limits on memory and time.

Every generated request (bounded examples, a fixed seed) must be answered without a 5xx, and every
error in OpenTSDB's shape. Requests that would make the router hold or compute too much get a 400 or
413 naming the limit they cross.
"""

from __future__ import annotations

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck

from rtdp_dagster.config import Settings
from rtdp_dagster.serving.openapi import DOCUMENT_PATH
from rtdp_dagster.serving.server import start_router
from tests.serving.conftest import RECENT, ServedData

SCHEMA = schemathesis.openapi.from_path(DOCUMENT_PATH)
EXAMPLES_PER_OPERATION = 40


def assert_error_shape(response: requests.Response) -> None:
    payload = response.json()
    assert set(payload) == {"error"}, payload
    error = payload["error"]
    assert error["code"] == response.status_code and isinstance(error["message"], str) and error["message"], error


@SCHEMA.parametrize()
@hypothesis.seed(20261206)
@hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_no_request_from_the_document_gets_a_5xx(case, router, served: ServedData):
    # Sent with plain requests: schemathesis' own transport counts pool internals this urllib3 lacks.
    response = requests.request(**case.as_transport_kwargs(base_url=router.url), timeout=30)
    assert response.status_code < 500, (case.method, case.path, case.query, case.body, response.text[:500])
    if response.status_code >= 400:
        assert_error_shape(response)


def refused(response: requests.Response, code: int, limit: str) -> None:
    assert response.status_code == code, response.text[:500]
    assert_error_shape(response)
    assert limit in response.json()["error"]["message"]


def test_ten_years_at_one_second_is_refused_before_any_work(router, served: ServedData):
    query = {"metric": RECENT, "aggregator": "sum", "downsample": "1s-avg"}
    url = f"{router.url}/api/query"
    refused(requests.post(url, json={"start": "10y-ago", "queries": [query]}, timeout=10), 400, "serve.max_range")
    refused(requests.post(url, json={"start": "2y-ago", "queries": [query]}, timeout=10), 400, "serve.max_datapoints")


def test_a_one_megabyte_body_is_refused_naming_the_limit(router):
    body = b'{"start": "1h-ago", "queries": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    refused(requests.post(f"{router.url}/api/query", data=body, timeout=10), 413, "serve.max_body_bytes")


@pytest.fixture(scope="module")
def narrow_router(stack: Settings):
    narrow = stack.model_copy(deep=True)
    narrow.serve.max_series = 1
    handle = start_router(narrow)
    yield handle
    handle.stop()


def test_a_wildcard_over_every_series_is_refused_naming_the_limit(narrow_router, served: ServedData):
    query = {"metric": RECENT, "aggregator": "sum", "downsample": "1m-avg", "tags": {"host": "*"}}
    response = requests.post(f"{narrow_router.url}/api/query", json={"start": "1h-ago", "queries": [query]}, timeout=10)
    refused(response, 400, "serve.max_series")
