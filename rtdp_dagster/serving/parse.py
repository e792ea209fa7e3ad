"""Parsing /api/query requests: the JSON body, and the GET form ``m=sum:1h-avg:rate:metric{tag=v}``.

Both forms become one validated QueryRequest; anything malformed raises a 400 naming the field.
"""

from __future__ import annotations

import orjson

from rtdp_dagster.serving.buckets import parse_interval
from rtdp_dagster.serving.errors import bad_request
from rtdp_dagster.serving.filters import VALID_NAME, TagFilter, filter_from_tag_value, make_filter
from rtdp_dagster.serving.model import (
    AGGREGATORS,
    DEFAULT_COUNTER_MAX,
    DOWNSAMPLE_FUNCTIONS,
    FILL_POLICIES,
    Downsample,
    QueryRequest,
    RateOptions,
    SubQuery,
)
from rtdp_dagster.serving.timeparse import parse_time

MAX_SUBQUERIES = 100
_IGNORED_FLAGS = ("noAnnotations", "globalAnnotations", "showTSUIDs", "showSummary", "showStats", "useCalendar")


def parse_json_body(raw: bytes, now_ms: int, max_range_ms: int, arrays: bool = False) -> QueryRequest:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object with start and queries")
    if body.get("delete"):
        raise bad_request("delete is not supported: the router only reads")
    for flag in ("msResolution", "ms", "showQuery", *_IGNORED_FLAGS):
        if flag in body and not isinstance(body[flag], bool):
            raise bad_request(f"{flag} must be true or false")
    timezone = _string(body.get("timezone", "UTC"), "timezone")
    start, end = _range(body.get("start"), body.get("end"), now_ms, max_range_ms, timezone)
    queries = body.get("queries")
    if not isinstance(queries, list) or not queries:
        raise bad_request("queries must be a non-empty list of sub-queries")
    if len(queries) > MAX_SUBQUERIES:
        raise bad_request(f"at most {MAX_SUBQUERIES} sub-queries per request")
    return QueryRequest(
        start_ms=start,
        end_ms=end,
        queries=tuple(_sub_query(item, index) for index, item in enumerate(queries)),
        ms_resolution=bool(body.get("msResolution") or body.get("ms")),
        show_query=bool(body.get("showQuery")),
        arrays=arrays,
    )


def parse_query_string(params: dict[str, list[str]], now_ms: int, max_range_ms: int) -> QueryRequest:
    """The GET form: start, end, m (repeatable), ms, show_query, arrays, timezone."""
    if params.get("tsuid"):
        raise bad_request("tsuid queries are not supported: query by metric and tags")
    if params.get("exp") or params.get("gexp"):
        raise bad_request("expression queries are not supported")
    timezone = _last(params, "timezone") or "UTC"
    start, end = _range(_last(params, "start"), _last(params, "end"), now_ms, max_range_ms, timezone)
    expressions = params.get("m") or []
    if not expressions:
        raise bad_request("missing m: give at least one m=<aggregator>:[<downsample>:][rate:]<metric>{tags}")
    if len(expressions) > MAX_SUBQUERIES:
        raise bad_request(f"at most {MAX_SUBQUERIES} sub-queries per request")
    return QueryRequest(
        start_ms=start,
        end_ms=end,
        queries=tuple(parse_m(text, index) for index, text in enumerate(expressions)),
        ms_resolution=flag(params, "ms"),
        show_query=flag(params, "show_query"),
        arrays=flag(params, "arrays"),
    )


def flag(params: dict[str, list[str]], name: str) -> bool:
    """A query-string flag: present (or 'true', '1', 'yes') is true; 'false', '0', 'no' is false."""
    if name not in params:
        return False
    value = (_last(params, name) or "").strip().lower()
    if value in ("", "true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise bad_request(f"{name} must be true or false, got {value!r}")


def parse_m(text: str, index: int) -> SubQuery:
    """One ``m`` expression: ``aggregator:[downsample:][rate[{counter,max,reset}]:][explicit_tags:]metric{..}{..}``."""
    tokens = split_top_level(text, ":")
    if len(tokens) < 2:
        raise bad_request(f"m={text!r}: expected <aggregator>:[<downsample>:][rate:]<metric>{{tags}}")
    aggregator, middle, last = tokens[0], tokens[1:-1], tokens[-1]
    brace = last.find("{")
    metric = last if brace < 0 else last[:brace]
    groups = _brace_groups(last[brace:], text) if brace >= 0 else []
    if len(groups) > 2:
        raise bad_request(f"m={text!r}: at most two tag groups: {{group-by filters}}{{other filters}}")
    filters: list[TagFilter] = []
    for number, group in enumerate(groups):
        for item in split_top_level(group, ","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise bad_request(f"m={text!r}: tag filter {item!r} must look like tagk=filter")
            filters.append(filter_from_tag_value(key.strip(), value.strip(), group_by=number == 0))
    downsample, rate, options, explicit = None, False, RateOptions(), False
    for token in middle:
        if token == "explicit_tags":
            explicit = True
        elif token == "rate" or token.startswith("rate{"):
            rate, options = True, _rate_from_m(token, text)
        elif "-" in token:
            downsample = parse_downsample(token)
        else:
            raise bad_request(f"m={text!r}: unknown part {token!r}")
    return SubQuery(
        index=index,
        metric=validate_metric(metric),
        aggregator=_aggregator(aggregator),
        downsample=downsample,
        rate=rate,
        rate_options=options,
        filters=tuple(filters),
        explicit_tags=explicit,
    )


def parse_downsample(text: object) -> Downsample:
    """``<interval>-<function>[-<fill>]``, e.g. ``1h-avg``, ``5m-sum-zero``, ``0all-max``."""
    if not isinstance(text, str) or "-" not in text:
        raise bad_request(f"invalid downsample {text!r}: expected <interval>-<aggregator>[-<fill policy>]")
    parts = text.split("-")
    if len(parts) > 3:
        raise bad_request(f"invalid downsample {text!r}: expected <interval>-<aggregator>[-<fill policy>]")
    interval, function = parts[0], parts[1].lower()
    fill = parts[2].lower() if len(parts) == 3 else "none"
    if function not in DOWNSAMPLE_FUNCTIONS:
        raise bad_request(
            f"invalid downsample {text!r}: unknown aggregator {function!r}; supported: "
            f"{', '.join(DOWNSAMPLE_FUNCTIONS)}"
        )
    if fill not in FILL_POLICIES:
        raise bad_request(
            f"invalid downsample {text!r}: unknown fill policy {fill!r}; supported: {', '.join(FILL_POLICIES)}"
        )
    return Downsample(text, parse_interval(interval), DOWNSAMPLE_FUNCTIONS[function], fill)


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on separator outside braces and parentheses (a regexp may hold ':' ',' '{' '}')."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth = max(depth - 1, 0)
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _sub_query(item: object, index: int) -> SubQuery:
    if not isinstance(item, dict):
        raise bad_request(f"queries[{index}] must be an object")
    where = f"queries[{index}]"
    if item.get("tsuids"):
        raise bad_request(f"{where}: tsuids are not supported: query by metric and tags")
    if item.get("percentiles"):
        raise bad_request(f"{where}: percentiles are not supported")
    if "aggregator" not in item:
        raise bad_request(f"{where}: missing aggregator")
    filters: list[TagFilter] = []
    tags = item.get("tags") or {}
    if not isinstance(tags, dict):
        raise bad_request(f"{where}: tags must be an object of tag key to value")
    for key, value in tags.items():
        filters.append(filter_from_tag_value(key, value, group_by=True))
    raw_filters = item.get("filters") or []
    if not isinstance(raw_filters, list):
        raise bad_request(f"{where}: filters must be a list")
    for number, raw in enumerate(raw_filters):
        if not isinstance(raw, dict):
            raise bad_request(f"{where}.filters[{number}] must be an object with type, tagk, filter, groupBy")
        filters.append(make_filter(raw.get("type"), raw.get("tagk"), raw.get("filter"), raw.get("groupBy", False)))
    rate = item.get("rate", False)
    explicit = item.get("explicitTags", False)
    if not isinstance(rate, bool) or not isinstance(explicit, bool):
        raise bad_request(f"{where}: rate and explicitTags must be true or false")
    downsample = item.get("downsample")
    return SubQuery(
        index=index,
        metric=validate_metric(item.get("metric")),
        aggregator=_aggregator(item.get("aggregator")),
        downsample=parse_downsample(downsample) if downsample else None,
        rate=rate,
        rate_options=_rate_options(item.get("rateOptions"), where) if rate else RateOptions(),
        filters=tuple(filters),
        explicit_tags=explicit,
    )


def _rate_options(raw: object, where: str) -> RateOptions:
    if raw is None:
        return RateOptions()
    if not isinstance(raw, dict):
        raise bad_request(f"{where}: rateOptions must be an object")
    counter, drop = raw.get("counter", False), raw.get("dropResets", False)
    if not isinstance(counter, bool) or not isinstance(drop, bool):
        raise bad_request(f"{where}: rateOptions.counter and rateOptions.dropResets must be true or false")
    counter_max = _number(raw.get("counterMax"), f"{where}: rateOptions.counterMax", DEFAULT_COUNTER_MAX)
    reset_value = _number(raw.get("resetValue"), f"{where}: rateOptions.resetValue", 0.0)
    return RateOptions(counter, counter_max, reset_value, drop)


def _rate_from_m(token: str, text: str) -> RateOptions:
    if token == "rate":
        return RateOptions()
    if not token.endswith("}"):
        raise bad_request(f"m={text!r}: rate options must look like rate{{counter[,counterMax[,resetValue]]}}")
    parts = [part.strip() for part in token[len("rate{") : -1].split(",")]
    kind = parts[0]
    if kind not in ("counter", "dropcounter", ""):
        raise bad_request(f"m={text!r}: rate options start with counter or dropcounter, got {kind!r}")
    counter_max = _number(parts[1] if len(parts) > 1 and parts[1] else None, "rate counterMax", DEFAULT_COUNTER_MAX)
    reset = _number(parts[2] if len(parts) > 2 and parts[2] else None, "rate resetValue", 0.0)
    return RateOptions(kind in ("counter", "dropcounter"), counter_max, reset, kind == "dropcounter")


def _number(value: object, what: str, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise bad_request(f"{what} must be a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad_request(f"{what} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")) or number < 0:
        raise bad_request(f"{what} must be a finite, non-negative number")
    return number


def validate_metric(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("missing metric name")
    if not VALID_NAME.match(value):
        raise bad_request(f"invalid metric name {value!r}: metric names use the characters A-Z a-z 0-9 - _ . /")
    return value


def _aggregator(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in AGGREGATORS:
        raise bad_request(f"unknown aggregator {value!r}; supported: {', '.join(AGGREGATORS)}")
    return value.lower()


def _range(start: object, end: object, now_ms: int, max_range_ms: int, timezone: str) -> tuple[int, int]:
    if start is None or start == "":
        raise bad_request("missing start time")
    start_ms = parse_time(start, now_ms, "start", timezone)
    end_ms = now_ms if end is None or end == "" else parse_time(end, now_ms, "end", timezone)
    if end_ms <= start_ms:
        raise bad_request(f"end ({end_ms} ms) must be after start ({start_ms} ms)")
    if end_ms - start_ms > max_range_ms:
        days = max_range_ms / 86_400_000
        raise bad_request(
            f"time range of {(end_ms - start_ms) / 86_400_000:.1f} days exceeds the limit of "
            f"{days:.0f} days (serve.max_range)"
        )
    return start_ms, end_ms


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a string")
    return value


def _last(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _brace_groups(text: str, whole: str) -> list[str]:
    groups, depth, current = [], 0, []
    for char in text:
        if char == "{" and depth == 0:
            depth, current = 1, []
            continue
        if depth == 0:
            raise bad_request(f"m={whole!r}: unexpected {char!r} after the tag groups")
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
            if depth == 0:
                if char != "}":
                    raise bad_request(f"m={whole!r}: unbalanced parentheses in the tag filters")
                groups.append("".join(current))
                continue
        current.append(char)
    if depth:
        raise bad_request(f"m={whole!r}: unclosed {{ in the tag filters")
    return groups
