"""Malformed and hostile queries get a 400 with a clear message; broken backends a 502 or 504."""

from __future__ import annotations

import requests

from rtdp_dagster.config import Settings
from rtdp_dagster.serving.server import start_router
from tests.conftest import free_ports
from tests.serving.conftest import RECENT, ServedData
from tests.serving.conftest import YEAR as YEAR_METRIC

QUERY = {"start": "1h-ago", "queries": [{"metric": RECENT, "aggregator": "sum", "downsample": "1m-avg"}]}


def with_query(**changes) -> dict:
    return {**QUERY, "queries": [{**QUERY["queries"][0], **changes}]}


def refused(response: requests.Response, code: int, words: str) -> None:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"], error


def test_bad_requests_get_400_with_a_clear_message(router, served: ServedData):
    url = f"{router.url}/api/query"
    refused(requests.post(url, data=b'{"start": "1h-ago", "queries": [', timeout=10), 400, "not valid JSON")
    refused(requests.post(url, json=with_query(aggregator="p99.9"), timeout=10), 400, "unknown aggregator")
    refused(requests.post(url, json={**QUERY, "start": "20y-ago"}, timeout=10), 400, "exceeds the limit")
    too_fine = {**with_query(downsample="1s-avg"), "start": "3y-ago"}
    refused(requests.post(url, json=too_fine, timeout=10), 400, "buckets per series")
    raw_too_old = {**with_query(downsample=None), "start": "30d-ago"}
    refused(requests.post(url, json=raw_too_old, timeout=10), 400, "without downsample")
    refused(requests.post(url, json=with_query(downsample="1h-median"), timeout=10), 400, "unknown aggregator")
    refused(requests.get(url, params={"m": f"sum:{RECENT}"}, timeout=10), 400, "missing start")


def test_injection_attempts_never_reach_the_tsdb(router, served: ServedData):
    url = f"{router.url}/api/query"
    refused(requests.post(url, json=with_query(tags={"host": 'a"}[1y]'}), timeout=10), 400, "invalid value")
    refused(requests.post(url, json=with_query(tags={"host": ".*|x"}), timeout=10), 400, "wildcard")
    refused(requests.post(url, json=with_query(metric='x"} or vector(1) #'), timeout=10), 400, "invalid metric")
    refused(
        requests.get(url, params={"start": "1h-ago", "m": f'sum:{RECENT}{{host=a"}}[1y]}}'}, timeout=10),
        400,
        "after the tag groups",
    )
    refused(
        requests.post(url, json=with_query(filters=[{"type": "regexp", "tagk": 'host"', "filter": "a"}]), timeout=10),
        400,
        "invalid tag key",
    )
    refused(
        requests.post(
            url, json=with_query(filters=[{"type": "regexp", "tagk": "host", "filter": "a\x00"}]), timeout=10
        ),
        400,
        "control characters",
    )
    # A regexp stays a regexp inside a quoted string literal: the quote and brace are just characters to match.
    matched = requests.post(
        url,
        json=with_query(filters=[{"type": "regexp", "tagk": "host", "filter": 'r1"}[1y]', "groupBy": True}]),
        timeout=10,
    )
    assert matched.status_code == 200 and matched.json() == []
    every = requests.post(
        url,
        json=with_query(filters=[{"type": "regexp", "tagk": "host", "filter": ".*|x", "groupBy": True}]),
        timeout=10,
    )
    assert sorted(item["tags"]["host"] for item in every.json()) == ["r1", "r2"]


def test_unknown_paths_and_methods_answer_in_the_same_shape(router):
    refused(requests.get(f"{router.url}/api/nothing", timeout=10), 404, "no such endpoint")
    refused(requests.delete(f"{router.url}/api/query", timeout=10), 405, "not allowed")


def test_unreachable_tsdb_is_502_and_a_slow_one_504(stack: Settings):
    closed = free_ports(1)[0]
    broken = stack.model_copy(deep=True)
    broken.tsdb.realtime.url = broken.tsdb.history.url = f"http://127.0.0.1:{closed}"
    handle = start_router(broken)
    try:
        refused(requests.post(f"{handle.url}/api/query", json=QUERY, timeout=30), 502, "cannot be reached")
    finally:
        handle.stop()
    impatient = stack.model_copy(deep=True)
    impatient.serve.request_timeout_s = 1e-6
    handle = start_router(impatient)
    try:
        refused(requests.post(f"{handle.url}/api/query", json=QUERY, timeout=30), 504, "took longer")
    finally:
        handle.stop()


def test_three_calendar_years_with_a_leap_day_are_inside_the_default_limit(router) -> None:
    query = {"metric": YEAR_METRIC, "aggregator": "sum", "downsample": "1d-avg"}
    leap_years = {"start": "1096d-ago", "queries": [query]}  # Grafana's "last 3 years" across a leap day
    assert requests.post(f"{router.url}/api/query", json=leap_years, timeout=30).status_code == 200
    too_long = {"start": "1100d-ago", "queries": [query]}
    refused(requests.post(f"{router.url}/api/query", json=too_long, timeout=30), 400, "exceeds")
