"""Every endpoint, asked the way Grafana's OpenTSDB data source asks (browser and server-side paths)."""

from __future__ import annotations

import requests

from rtdp_dagster.batch.intervals import HOUR_MS, MINUTE_MS
from rtdp_dagster.serving.openapi import DOCUMENT_PATH, document_text
from tests.serving.conftest import COUNTER, RECENT, SPAN, YEAR, ServedData, post_query


def get(router, path: str, **params) -> requests.Response:
    return requests.get(f"{router.url}{path}", params=params, timeout=30)


def test_browser_path_of_opentsdb_2_3(router, served: ServedData):
    """Times in ms, all of a panel's queries in one body, dps as an object, query.index (showQuery)."""
    body = {
        "start": served.now_ms - HOUR_MS,
        "end": served.now_ms,
        "msResolution": False,
        "globalAnnotations": True,
        "showQuery": True,
        "queries": [
            {
                "metric": SPAN,
                "aggregator": "avg",
                "downsample": "10m-avg",
                "filters": [{"type": "literal_or", "tagk": "host", "filter": "h1|h2", "groupBy": False}],
            },
            {"metric": RECENT, "aggregator": "sum", "downsample": "1m-avg", "tags": {"host": "r1"}},
            {
                "metric": RECENT,
                "aggregator": "max",
                "downsample": "5m-max",
                "filters": [{"type": "regexp", "tagk": "site", "filter": "s[12]", "groupBy": True}],
            },
        ],
    }
    response = post_query(router.url, body)
    assert response.status_code == 200, response.text
    results = response.json()
    assert [(r["metric"], r["query"]["index"]) for r in results] == [(SPAN, 0), (RECENT, 1), (RECENT, 2), (RECENT, 2)]
    span, r1, *by_site = results
    assert span["tags"] == {"site": "s1"} and span["aggregateTags"] == ["host"]
    assert r1["tags"] == {"host": "r1", "site": "s1"}
    assert [item["tags"]["site"] for item in by_site] == ["s1", "s2"]
    stamps = [int(key) for key in r1["dps"]]
    assert all(stamp < 10**10 and stamp % 60 == 0 for stamp in stamps), "second timestamps at minute buckets"
    recent = served.recent[(served.recent.host == "r1")]
    minute = (served.now_ms - 30 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    mean = recent.loc[(recent["ts"] >= minute) & (recent["ts"] < minute + MINUTE_MS), "value"].mean()
    assert abs(r1["dps"][str(minute // 1000)] - mean) < 1e-9


def test_server_side_path_of_opentsdb_2_4(router, served: ServedData):
    """Times in seconds, one query per request, ?arrays=true: dps as [[ts, value], ...]."""
    body = {
        "start": (served.now_ms - HOUR_MS) // 1000,
        "end": served.now_ms // 1000,
        "queries": [{"metric": RECENT, "aggregator": "sum", "downsample": "1m-avg", "tags": {"host": "r2"}}],
    }
    response = post_query(router.url, body, arrays=True)
    assert response.status_code == 200, response.text
    (result,) = response.json()
    assert isinstance(result["dps"], list) and all(len(pair) == 2 for pair in result["dps"])
    stamps = [pair[0] for pair in result["dps"]]
    assert stamps == sorted(stamps) and stamps[0] >= (served.now_ms - HOUR_MS) // 1000 - 60
    assert 58 <= len(stamps) <= 61


def test_a_big_answer_is_gzipped_and_a_small_one_is_not(stack, router, served: ServedData):
    """Over serve.gzip_min_bytes and to a client that accepts gzip, /api/query answers compressed (the
    same JSON); under it, as it is."""
    from rtdp_dagster.serving.server import start_router

    small_limit = stack.model_copy(update={"serve": stack.serve.model_copy(update={"gzip_min_bytes": 2000})})
    handle = start_router(small_limit)
    try:
        for hours, encoding in ((6, "gzip"), (0.05, None)):
            query = {"metric": RECENT, "aggregator": "none", "downsample": "1m-avg", "tags": {"host": "*"}}
            body = {"start": served.now_ms - int(hours * HOUR_MS), "end": served.now_ms, "queries": [query]}
            answer = post_query(handle.url, body)
            assert answer.status_code == 200, answer.text
            assert answer.headers.get("content-encoding") == encoding
            assert answer.json() == post_query(router.url, body).json()
            assert (len(answer.content) >= 2000) == (encoding == "gzip")
    finally:
        handle.stop()


def test_get_form_and_rate(router, served: ServedData):
    response = get(
        router,
        "/api/query",
        start=str((served.now_ms - HOUR_MS) // 1000),
        m=f"sum:1m-max:rate{{counter,,0}}:{COUNTER}{{host=c1}}",
        ms="true",
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()
    rates = list(result["dps"].values())
    assert rates and all(rate >= 0 for rate in rates[1:-1])


def test_suggest_as_template_variables_use_it(router, served: ServedData):
    # metrics(prefix) sends q=<prefix>; metrics() sends an empty q; with no q at all nothing is suggested.
    metrics = get(router, "/api/suggest", type="metrics", q="serve.test.", max=1000).json()
    assert {SPAN, RECENT, COUNTER, YEAR} <= set(metrics)
    assert YEAR in get(router, "/api/suggest", type="metrics", q="", max=100000).json(), "history-only metrics too"
    assert get(router, "/api/suggest", type="metrics").json() == []
    assert len(get(router, "/api/suggest", type="metrics", q="serve.test.", max=1).json()) == 1
    tag_keys = get(router, "/api/suggest", type="tagk", q="").json()
    assert {"host", "site"} <= set(tag_keys) and not {"rollup", "agg", "part"} & set(tag_keys)
    assert {"y1", "y2"} <= set(get(router, "/api/suggest", type="tagv", q="y").json())
    assert get(router, "/api/suggest", type="nonsense", q="x").status_code == 400


def test_lookup_for_tag_names_and_values(router, served: ServedData):
    values = get(router, "/api/search/lookup", m=f"{YEAR}{{host=*}}", limit=1000).json()
    assert values["type"] == "LOOKUP" and values["totalResults"] == 2
    assert sorted(item["tags"]["host"] for item in values["results"]) == ["y1", "y2"]
    assert all(set(item["tags"]) == {"host", "site"} for item in values["results"]), "rollup tags hidden"
    keys = get(router, "/api/search/lookup", m=RECENT, limit=1000).json()
    assert {key for item in keys["results"] for key in item["tags"]} == {"host", "site"}
    posted = requests.post(
        f"{router.url}/api/search/lookup", json={"metric": SPAN, "tags": [{"key": "host", "value": "h2"}]}, timeout=30
    ).json()
    assert [item["tags"]["host"] for item in posted["results"]] == ["h2"]


def test_last_point(router, served: ServedData):
    response = get(router, "/api/query/last", timeseries=f"{COUNTER}{{host=c1}}", back_scan="2")
    (point,) = response.json()
    newest = served.counter.iloc[-1]
    assert point["timestamp"] == int(newest.ts) and float(point["value"]) == newest.value
    assert isinstance(point["value"], str) and point["tags"] == {"host": "c1", "site": "s1"}
    posted = requests.post(
        f"{router.url}/api/query/last",
        json={"queries": [{"metric": RECENT, "tags": {"host": "*"}}], "backScan": 1},
        timeout=30,
    ).json()
    assert sorted(item["tags"]["host"] for item in posted) == ["r1", "r2"]


def test_version_aggregators_filters_value_mappings_and_openapi(router):
    assert get(router, "/api/version").json()["version"].startswith("2.")
    aggregators = get(router, "/api/aggregators").json()
    assert {"sum", "avg", "min", "max", "count", "none", "zimsum", "mimmin", "mimmax"} <= set(aggregators)
    assert {"literal_or", "wildcard", "regexp", "not_literal_or"} <= set(get(router, "/api/config/filters").json())
    assert get(router, "/api/rtdp/value_mappings").json() == router_settings_mappings(router)
    assert get(router, "/openapi.json").json()["paths"].keys() >= {"/api/query", "/api/suggest", "/api/query/last"}
    assert DOCUMENT_PATH.read_text() == document_text(), (
        "docs/serving.openapi.json is out of date: python -m rtdp_dagster.serving.openapi"
    )


def test_every_supported_aggregator_works_across_series_and_in_downsampling(router, served: ServedData):
    aggregators = get(router, "/api/aggregators").json()
    queries = [
        {"metric": RECENT, "aggregator": name, "downsample": f"5m-{name}" if name != "none" else "5m-avg"}
        for name in aggregators
    ]
    response = post_query(router.url, {"start": served.now_ms - HOUR_MS, "queries": queries, "showQuery": True})
    assert response.status_code == 200, response.text
    assert {item["query"]["index"] for item in response.json()} == set(range(len(aggregators)))


def router_settings_mappings(router) -> dict:
    return router.server.config.app.state.router.settings.serve.value_mappings
