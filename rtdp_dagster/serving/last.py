"""/api/query/last: the newest point of each matching series, from the realtime TSDB."""

from __future__ import annotations

import time

import orjson

from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.catalog import tsuid
from rtdp_dagster.serving.errors import bad_request
from rtdp_dagster.serving.filters import TagFilter, filter_from_tag_value
from rtdp_dagster.serving.parse import split_top_level, validate_metric
from rtdp_dagster.serving.partials import series_tags
from rtdp_dagster.serving.vm import Deadline, VmClient

MAX_LAST_QUERIES = 100


def parse_last_body(raw: bytes) -> tuple[list[tuple[str, list[TagFilter]]], float | None]:
    """POST {"queries": [{"metric": ..., "tags": {...}}], "backScan": hours}."""
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("queries"), list) or not body["queries"]:
        raise bad_request("request body must be an object with a non-empty list of queries")
    if len(body["queries"]) > MAX_LAST_QUERIES:
        raise bad_request(f"at most {MAX_LAST_QUERIES} queries per request")
    queries = []
    for index, item in enumerate(body["queries"]):
        if not isinstance(item, dict):
            raise bad_request(f"queries[{index}] must be an object with metric and tags")
        if item.get("tsuids"):
            raise bad_request(f"queries[{index}]: tsuids are not supported: query by metric and tags")
        tags = item.get("tags") or {}
        if not isinstance(tags, dict):
            raise bad_request(f"queries[{index}]: tags must be an object")
        queries.append((validate_metric(item.get("metric")), [filter_from_tag_value(k, v) for k, v in tags.items()]))
    return queries, _back_scan(body.get("backScan"))


def parse_last_params(params: dict[str, list[str]]) -> tuple[list[tuple[str, list[TagFilter]]], float | None]:
    """GET ?timeseries=metric{tag=value}&back_scan=hours (timeseries repeatable)."""
    expressions = params.get("timeseries") or []
    if not expressions:
        raise bad_request("missing timeseries: give timeseries=<metric>{tagk=tagv,...}")
    if len(expressions) > MAX_LAST_QUERIES:
        raise bad_request(f"at most {MAX_LAST_QUERIES} timeseries per request")
    queries = []
    for text in expressions:
        brace = text.find("{")
        metric = validate_metric(text if brace < 0 else text[:brace])
        filters = []
        if brace >= 0:
            if not text.endswith("}"):
                raise bad_request(f"timeseries={text!r}: expected metric{{tagk=tagv,...}}")
            for item in split_top_level(text[brace + 1 : -1], ","):
                key, sep, value = item.partition("=")
                if not sep:
                    raise bad_request(f"timeseries={text!r}: tag {item!r} must look like tagk=tagv")
                filters.append(filter_from_tag_value(key.strip(), value.strip()))
        queries.append((metric, filters))
    back = params.get("back_scan")
    return queries, _back_scan(back[-1] if back else None)


def last_points(
    client: VmClient,
    queries: list[tuple[str, list[TagFilter]]],
    back_scan_hours: float | None,
    retention_ms: int,
    deadline: Deadline,
) -> list[dict]:
    """The newest sample of every series within back_scan hours (default: the whole retention)."""
    now_ms = int(time.time() * 1000)
    window_ms = min(int(back_scan_hours * 3_600_000), retention_ms) if back_scan_hours else retention_ms
    results = []
    for metric, filters in queries:
        selector = metricsql.selector(metric, [m for item in filters for m in item.matchers()])
        values = client.instant(f"last_over_time({selector}[{window_ms}ms])", now_ms, deadline)
        times = client.instant(f"tlast_over_time({selector}[{window_ms}ms])", now_ms, deadline)
        stamps = {_key(labels): ts for labels, _, ts in times}
        for labels, _, value in values:
            tags = series_tags(labels)
            if not all(item.matches(tags.get(item.tagk)) for item in filters):
                continue
            stamp = stamps.get(_key(labels))
            timestamp = round(stamp * 1000) if stamp is not None else now_ms
            results.append(
                {
                    "metric": metric,
                    "timestamp": timestamp,
                    "value": format_value(value),
                    "tags": tags,
                    "tsuid": tsuid(metric, tags),
                }
            )
    return sorted(results, key=lambda item: (item["metric"], sorted(item["tags"].items())))


def format_value(value: float) -> str:
    """OpenTSDB sends the last value as a string: ``42`` or ``42.5``."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(series_tags(labels).items()))


def _back_scan(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        hours = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad_request(f"backScan must be a number of hours, got {value!r}") from None
    if not 0 <= hours <= 24 * 365 * 10:
        raise bad_request("backScan must be between 0 and 87600 hours")
    return hours
