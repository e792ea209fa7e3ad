"""Pure logic of the panel verification: Grafana's time arithmetic, variable formats, lookups and
the /api/query body (compared with what Grafana's OpenTSDB data source code produces)."""

from __future__ import annotations

import datetime as dt

import pytest

from rtdp_dagster.grafana.grafana_time import auto_interval, panel_range, parse_relative, seconds_to_hms
from rtdp_dagster.grafana.query_request import convert_target, query_body
from rtdp_dagster.grafana.templating import ALL, Lookups, Scope, Variable, resolve_variables

NOW = int(dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)


def _ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def test_relative_times_and_panel_overrides() -> None:
    assert parse_relative("now", NOW) == NOW
    assert parse_relative("now-6h", NOW) == NOW - 6 * 3_600_000
    assert parse_relative("now-1M", NOW) == _ms(2026, 2, 28, 12)  # day clamped like moment.js
    assert parse_relative("now-3y", NOW) == _ms(2023, 3, 31, 12)
    assert panel_range("now-1y", "now", "3y") == ("now-3y", "now")
    assert panel_range("now-6h", "now", None) == ("now-6h", "now")
    with pytest.raises(ValueError, match="unsupported time expression"):
        parse_relative("now/d", NOW)


@pytest.mark.parametrize(
    ("hours", "max_points", "min_interval", "expected"),
    [
        (1, 300, "10s", "10s"),
        (6, 300, "10s", "1m"),
        (24, 300, "10s", "5m"),
        (6, 1000, None, "20s"),
        (0.1, 300, "10s", "10s"),
        (0.1, 300, None, "1s"),
        (24 * 365, 300, "10s", "1d"),
    ],
)
def test_auto_interval_matches_grafana(hours: float, max_points: int, min_interval: str | None, expected: str) -> None:
    assert auto_interval(0, int(hours * 3_600_000), max_points, min_interval) == expected


def test_seconds_to_hms_keeps_the_largest_unit() -> None:
    assert [seconds_to_hms(s) for s in (0.05, 1, 90, 3600, 604_800, 31_536_000)] == [
        "50ms",
        "1s",
        "1m",
        "1h",
        "7d",
        "1y",
    ]


def _scope() -> Scope:
    return Scope(
        {
            "site": Variable("site", ["site01", "site02"], ALL, all_value="*"),
            "app": Variable("app", ["app01"], "app01"),
            "host": Variable("host", ["h1", "h2", "h3"], ["h1", "h3"], multi=True),
            "any": Variable("any", ["a", "b"], ALL),
        }
    )


def test_variable_formats() -> None:
    scope = _scope()
    # Custom all values are substituted unformatted; multi values pipe- or distributed-joined.
    assert scope.replace("$site|${app}|$host", "pipe") == "*|app01|h1|h3"
    assert scope.replace("host=$host", "distributed") == "host=h1,host=h3"
    assert scope.replace("$any", "pipe") == "a|b"
    assert scope.replace("${host:csv} [[app]] $unknown") == "h1,h3 app01 $unknown"
    assert scope.with_scoped({"site": "site02"}).replace("$site", "pipe") == "site02"


def test_convert_target_like_grafana() -> None:
    target = {
        "refId": "A",
        "metric": "app.requests.count",
        "aggregator": "sum",
        "tags": {"site": "$site", "host": "$host"},
        "downsampleAggregator": "max",
        "downsampleFillPolicy": "zero",
        "shouldComputeRate": True,
        "isCounter": True,
    }
    assert convert_target(target, _scope(), "1m", 3) == {
        "metric": "app.requests.count",
        "aggregator": "sum",
        "downsample": "1m-max-zero",
        "rate": True,
        "rateOptions": {"counter": True, "dropResets": True},
        "tags": {"site": "*", "host": "h1|h3"},
    }
    explicit = {
        "metric": "m",
        "downsampleInterval": "1.5s",
        "downsampleAggregator": "avg",
        "filters": [{"type": "literal_or", "tagk": "host", "filter": "$host", "groupBy": True}],
        "tags": {"ignored": "when filters exist"},
        "shouldComputeRate": True,
        "counterMax": "100",
    }
    assert convert_target(explicit, _scope(), "1m", 3) == {
        "metric": "m",
        "aggregator": "avg",
        "downsample": "1500ms-avg",
        "rate": True,
        "rateOptions": {"counter": False, "counterMax": 100, "dropResets": False},
        "filters": [{"type": "literal_or", "tagk": "host", "filter": "h1|h3", "groupBy": True}],
    }
    assert "downsample" not in convert_target({"metric": "m", "disableDownsampling": True}, _scope(), "1m", 3)


def test_query_body_has_every_visible_target_and_omits_end_at_now() -> None:
    targets = [
        {"refId": "A", "metric": "a", "downsampleAggregator": "avg"},
        {"refId": "B", "metric": "b", "hide": True},
        {"refId": "C"},
        {"refId": "D", "metric": "d", "downsampleAggregator": "max"},
    ]
    body = query_body(targets, _scope(), 1000, None, "10s", 3, 2)
    assert body == {
        "start": 1000,
        "msResolution": True,
        "globalAnnotations": True,
        "showQuery": True,
        "queries": [
            {"metric": "a", "aggregator": "avg", "downsample": "10s-avg"},
            {"metric": "d", "aggregator": "avg", "downsample": "10s-max"},
        ],
    }
    assert query_body(targets, _scope(), 1000, 2000, "10s", 2, 1)["end"] == 2000
    assert "showQuery" not in query_body(targets, _scope(), 1000, 2000, "10s", 2, 1)


def test_chained_variables_ask_lookup_like_grafana() -> None:
    calls: list[tuple[str, dict]] = []
    hosts = {"site01": ["site01-h2", "site01-h1"], "site02": ["site02-h1"]}

    def get(path: str, params: dict) -> dict | list:
        calls.append((path, params))
        if path == "/api/suggest":
            return ["sys.cpu.util"]
        selector = params["m"].split("{")[1].rstrip("}")
        key, *filters = selector.split(",")
        site = dict(item.split("=") for item in filters).get("site", "*")
        if key == "site=*":
            return {"results": [{"tags": {"site": s}} for s in ("site02", "site01", "site01")]}
        return {"results": [{"tags": {"host": h}} for s, hs in hosts.items() if site in ("*", s) for h in hs]}

    templating = [
        {
            "name": "site",
            "type": "query",
            "datasource": {"uid": "ds"},
            "query": "tag_values(sys.cpu.util, site)",
            "sort": 1,
            "includeAll": True,
            "allValue": "*",
            "current": {"value": "$__all"},
        },
        {
            "name": "host",
            "type": "query",
            "datasource": {"uid": "ds"},
            "sort": 1,
            "query": "tag_values(sys.cpu.util, host, site=$site)",
        },
        {"name": "metric", "type": "query", "datasource": {"uid": "ds"}, "query": "metrics(sys.)"},
    ]
    scope = resolve_variables(templating, Lookups(get, 1000), "ds")

    assert calls[0] == ("/api/search/lookup", {"m": "sys.cpu.util{site=*}", "limit": 1000})
    assert calls[1] == ("/api/search/lookup", {"m": "sys.cpu.util{host=*,site=*}", "limit": 1000})
    assert calls[2] == ("/api/suggest", {"type": "metrics", "q": "sys.", "max": 1000})
    assert scope.variables["site"].options == ["site01", "site02"] and scope.variables["site"].is_all()
    # No saved selection: the first option, after sorting.
    assert scope.variables["host"].current == "site01-h1"
    assert scope.variables["site"].values() == ["site01", "site02"]

    templating[0]["current"] = {"value": "site02"}
    scope = resolve_variables(templating, Lookups(get, 1000), "ds")
    assert calls[-2] == ("/api/search/lookup", {"m": "sys.cpu.util{host=*,site=site02}", "limit": 1000})
    assert scope.variables["host"].options == ["site02-h1"]
