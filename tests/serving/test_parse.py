"""Parsing /api/query requests: JSON bodies and the GET m= form, and what they refuse."""

from __future__ import annotations

import orjson
import pytest

from rtdp_dagster.serving.errors import ApiError
from rtdp_dagster.serving.parse import parse_json_body, parse_m, parse_query_string
from rtdp_dagster.serving.timeparse import parse_time

NOW = 1_795_000_000_000
YEAR = 365 * 86_400_000


def body(**fields) -> bytes:
    return orjson.dumps({"start": NOW - 3_600_000, "queries": [{"metric": "sys.cpu", "aggregator": "sum"}], **fields})


def test_grafana_browser_body_with_filters_downsample_and_rate():
    raw = orjson.dumps(
        {
            "start": NOW - 6 * 3_600_000,
            "end": NOW,
            "msResolution": True,
            "showQuery": True,
            "globalAnnotations": True,
            "queries": [
                {
                    "metric": "sys.cpu",
                    "aggregator": "avg",
                    "downsample": "5m-sum-zero",
                    "rate": True,
                    "rateOptions": {"counter": True, "counterMax": 1000, "resetValue": 10, "dropResets": False},
                    "filters": [
                        {"type": "wildcard", "tagk": "host", "filter": "web*", "groupBy": True},
                        {"type": "literal_or", "tagk": "site", "filter": "a|b", "groupBy": False},
                    ],
                },
                {"metric": "sys.mem", "aggregator": "none", "tags": {"host": "*"}},
            ],
        }
    )
    request = parse_json_body(raw, NOW, YEAR)
    first, second = request.queries
    assert (request.start_ms, request.end_ms, request.ms_resolution, request.show_query) == (
        NOW - 6 * 3_600_000,
        NOW,
        True,
        True,
    )
    assert first.downsample is not None and first.downsample.function == "sum" and first.downsample.fill == "zero"
    assert first.downsample.bucketing.width_ms == 300_000
    assert first.rate and first.rate_options.counter_max == 1000 and first.rate_options.reset_value == 10
    assert first.group_by == ("host",)
    assert second.index == 1 and second.filters[0].type == "wildcard" and second.group_by == ("host",)


def test_seconds_and_relative_times():
    assert parse_time(1_795_000_000, NOW, "start") == 1_795_000_000_000
    assert parse_time(1_795_000_000_123, NOW, "start") == 1_795_000_000_123
    assert parse_time("1795000000.5", NOW, "start") == 1_795_000_000_500
    assert parse_time("2h-ago", NOW, "start") == NOW - 7_200_000
    assert parse_time("2026/11/21-12:00:00", NOW, "start") == 1_795_262_400_000
    assert parse_time("now", NOW, "end") == NOW


def test_get_form_with_rate_options_and_two_tag_groups():
    query = parse_m("sum:1h-avg-null:rate{counter,1000,5}:sys.if.bytes{host=web01|web02}{dc=regexp(^l(g|h)a$)}", 0)
    assert query.aggregator == "sum" and query.metric == "sys.if.bytes" and query.rate
    assert query.rate_options.counter and query.rate_options.counter_max == 1000 and query.rate_options.reset_value == 5
    assert [(f.type, f.tagk, f.filter, f.group_by) for f in query.filters] == [
        ("literal_or", "host", "web01|web02", True),
        ("regexp", "dc", "^l(g|h)a$", False),
    ]
    request = parse_query_string(
        {"start": ["1h-ago"], "m": ["avg:sys.cpu", "max:0all-max:sys.mem"], "arrays": ["true"], "ms": [""]}, NOW, YEAR
    )
    assert request.arrays and request.ms_resolution and len(request.queries) == 2
    assert request.queries[1].downsample is not None and request.queries[1].downsample.bucketing.kind == "all"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{bad json", "not valid JSON"),
        (b"[]", "JSON object"),
        (body(queries=[{"metric": "m", "aggregator": "median"}]), "unknown aggregator 'median'"),
        (body(queries=[{"metric": "m", "aggregator": "sum", "downsample": "1h-p99"}]), "unknown aggregator 'p99'"),
        (body(queries=[{"metric": "m", "aggregator": "sum", "downsample": "1x-avg"}]), "invalid downsample interval"),
        (body(queries=[{"metric": "m", "aggregator": "sum", "downsample": "1h-avg-bogus"}]), "unknown fill policy"),
        (body(start="10y-ago"), "exceeds the limit"),
        (body(start=NOW + 1000), "must be after start"),
        (body(queries=[]), "non-empty list"),
        (body(queries=[{"metric": "m", "aggregator": "sum", "tags": {"host": 'a"}[1y]'}}]), "invalid value"),
        (body(queries=[{"metric": "m", "aggregator": "sum", "tags": {"host": ".*|x"}}]), "wildcard"),
        (body(queries=[{"metric": 'm"} or vector(1)', "aggregator": "sum"}]), "invalid metric name"),
        (body(queries=[{"metric": "m", "aggregator": "sum", "tags": {"rollup": "1d"}}]), "reserved"),
        (
            body(
                queries=[
                    {
                        "metric": "m",
                        "aggregator": "sum",
                        "filters": [{"type": "regexp", "tagk": "host", "filter": "(?=x)a"}],
                    }
                ]
            ),
            "RE2",
        ),
        (
            body(
                queries=[
                    {
                        "metric": "m",
                        "aggregator": "sum",
                        "filters": [{"type": "regexp", "tagk": "host", "filter": "a\nb"}],
                    }
                ]
            ),
            "control characters",
        ),
        (
            body(
                queries=[
                    {
                        "metric": "m",
                        "aggregator": "sum",
                        "filters": [{"type": "regexp", "tagk": "host", "filter": "(unclosed"}],
                    }
                ]
            ),
            "invalid regexp",
        ),
        (
            body(
                queries=[
                    {
                        "metric": "m",
                        "aggregator": "sum",
                        "filters": [{"type": "soundex", "tagk": "host", "filter": "x"}],
                    }
                ]
            ),
            "unknown filter type",
        ),
        (body(delete=True), "delete is not supported"),
    ],
)
def test_bad_bodies_are_400_with_a_clear_message(raw: bytes, message: str):
    with pytest.raises(ApiError) as caught:
        parse_json_body(raw, NOW, 3 * YEAR)
    assert caught.value.code == 400
    assert message in caught.value.message


@pytest.mark.parametrize(
    "m", ['sum:m{host=a"}[1y]}', "sum:m{host=a", "sum:1h-avg:m{host}", "bogus:m", "sum:m{a=b}{c=d}{e=f}", "sum"]
)
def test_bad_m_expressions_are_400(m: str):
    with pytest.raises(ApiError) as caught:
        parse_m(m, 0)
    assert caught.value.code == 400
