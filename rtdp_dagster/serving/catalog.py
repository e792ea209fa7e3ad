"""What exists in the TSDBs, for /api/suggest and /api/search/lookup: names, tag keys and values.

Both TSDBs are asked over their whole retention; the rollup bookkeeping tags never show. Lists are
kept for ``serve.metadata_cache_s``, so a dashboard's template variables cost one round trip.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.errors import bad_request
from rtdp_dagster.serving.filters import HIDDEN_TAGS, VALID_NAME
from rtdp_dagster.serving.parse import split_top_level
from rtdp_dagster.serving.partials import series_tags
from rtdp_dagster.serving.vm import Deadline, VmClient

SUGGEST_TYPES = ("metrics", "tagk", "tagv")
DEFAULT_SUGGEST_MAX = 25
DEFAULT_LOOKUP_LIMIT = 25
_MAX_LIMIT = 100_000


class Catalog:
    def __init__(self, tsdbs: list[tuple[VmClient, int]], levels: list[str], ttl_s: float, pool: Executor) -> None:
        """tsdbs: each client with its retention in ms; levels: the rollup levels, finest first."""
        self.tsdbs, self.levels, self.ttl_s, self.pool = tsdbs, levels, ttl_s, pool
        self._cache: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def suggest(self, kind: str | None, prefix: str | None, limit: object, deadline: Deadline) -> list[str]:
        if kind not in SUGGEST_TYPES:
            raise bad_request(f"invalid suggest type {kind!r}; expected one of {', '.join(SUGGEST_TYPES)}")
        count = _limit(limit, DEFAULT_SUGGEST_MAX, "max")
        if prefix is None:  # no q at all: nothing to suggest (q= with an empty value means every name)
            return []
        names = self._names(kind, deadline)
        return [name for name in names if name.startswith(prefix)][:count]

    def lookup(self, metric: str, pairs: list[tuple[str, str]], limit: object, deadline: Deadline) -> dict:
        """Series of metric (or any, '*') whose tags match every (key, value) pair; '*' matches anything."""
        started = time.monotonic()
        count = _limit(limit, DEFAULT_LOOKUP_LIMIT, "limit")
        matchers = []
        for key, value in pairs:
            if key != "*" and value != "*":
                matchers.append(metricsql.matcher(key, "=", value))
            elif key != "*":
                matchers.append(metricsql.matcher(key, "!=", ""))
        name = (
            metricsql.matcher("__name__", "=", metric) if metric != "*" else metricsql.matcher("__name__", "=~", ".+")
        )
        jobs = [
            self.pool.submit(self._series, client, retention_ms, [name, *matchers], deadline)
            for client, retention_ms in self.tsdbs
        ]
        found: dict[tuple, dict] = {}
        for job in jobs:
            for labels in job.result():
                tags = series_tags(labels)
                if not all(_pair_matches(tags, key, value) for key, value in pairs):
                    continue
                found.setdefault((labels.get("__name__", ""), tuple(sorted(tags.items()))), tags)
        results = [
            {"tsuid": tsuid(series_metric, tags), "metric": series_metric, "tags": tags}
            for (series_metric, _), tags in sorted(found.items())
        ]
        return {
            "type": "LOOKUP",
            "metric": metric,
            "tags": [{"key": key, "value": value} for key, value in pairs],
            "limit": count,
            "time": round((time.monotonic() - started) * 1000),
            "results": results[:count],
            "startIndex": 0,
            "totalResults": len(results),
        }

    def _series(self, client: VmClient, retention_ms: int, matchers: list[str], deadline: Deadline) -> list[dict]:
        start = int(time.time() * 1000) - retention_ms
        if client.name != "history":
            return client.series("{" + ",".join(matchers) + "}", start, deadline)
        # Rollup rows repeat each series per level, aggregate and part: read the coarsest level that has any.
        for level in reversed(self.levels):
            rollup = [metricsql.matcher("rollup", "=", level), metricsql.matcher("agg", "=", "count")]
            found = client.series("{" + ",".join([*matchers, *rollup]) + "}", start, deadline)
            if found:
                return found
        return []

    def _names(self, kind: str, deadline: Deadline) -> list[str]:
        now = time.time()
        with self._lock:
            cached = self._cache.get(kind)
        if cached and cached[0] > now:
            return cached[1]
        names = sorted(self._load(kind, deadline))
        with self._lock:
            self._cache[kind] = (now + self.ttl_s, names)
        return names

    def _load(self, kind: str, deadline: Deadline) -> set[str]:
        now_ms = int(time.time() * 1000)
        if kind == "metrics":
            calls: list[Callable[[], list[str]]] = [
                (lambda c=client, r=retention: c.label_values("__name__", None, now_ms - r, deadline))
                for client, retention in self.tsdbs
            ]
            return {name for names in self._all(calls) for name in names}
        keys = self._names("tagk", deadline) if kind == "tagv" else None
        if kind == "tagk":
            calls = [(lambda c=client, r=retention: c.labels(now_ms - r, deadline)) for client, retention in self.tsdbs]
            return {key for found in self._all(calls) for key in found if key != "__name__" and key not in HIDDEN_TAGS}
        calls = [
            (lambda c=client, r=retention, k=key: c.label_values(k, None, now_ms - r, deadline))
            for client, retention in self.tsdbs
            for key in keys or []
        ]
        return {value for values in self._all(calls) for value in values}

    def _all(self, calls: list[Callable[[], list[str]]]) -> list[list[str]]:
        return [job.result() for job in [self.pool.submit(call) for call in calls]]


def parse_lookup_m(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``metric{k=v,...}``, ``{k=v}`` or ``metric``; '*' stands for any key or value."""
    brace = text.find("{")
    metric = (text if brace < 0 else text[:brace]).strip() or "*"
    pairs = []
    if brace >= 0:
        if not text.endswith("}"):
            raise bad_request(f"m={text!r}: expected metric{{tagk=tagv,...}}")
        for item in split_top_level(text[brace + 1 : -1], ","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise bad_request(f"m={text!r}: tag {item!r} must look like tagk=tagv")
            pairs.append((key.strip(), value.strip()))
    return validate_lookup(metric, pairs)


def validate_lookup(metric: object, pairs: list[tuple[object, object]]) -> tuple[str, list[tuple[str, str]]]:
    if not isinstance(metric, str) or (metric != "*" and not VALID_NAME.match(metric)):
        raise bad_request(f"invalid metric name {metric!r}")
    checked = []
    for key, value in pairs:
        for part, what in ((key, "tag key"), (value, "tag value")):
            if not isinstance(part, str) or (part != "*" and not VALID_NAME.match(part)):
                raise bad_request(f"invalid {what} {part!r}: use the characters A-Z a-z 0-9 - _ . / or *")
        if key in HIDDEN_TAGS:
            raise bad_request(f"tag key {key!r} is reserved by the router")
        checked.append((str(key), str(value)))
    return metric, checked


def tsuid(metric: str, tags: dict[str, str]) -> str:
    """A stable identifier of a series (OpenTSDB clients expect one; the TSDBs here have none)."""
    text = metric + "{" + ",".join(f"{k}={v}" for k, v in sorted(tags.items())) + "}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest().upper()


def _pair_matches(tags: dict[str, str], key: str, value: str) -> bool:
    if key == "*":
        return value == "*" or value in tags.values()
    return key in tags and (value == "*" or tags[key] == value)


def _limit(value: object, default: int, what: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad_request(f"{what} must be a whole number, got {value!r}") from None
    if not 1 <= number <= _MAX_LIMIT:
        raise bad_request(f"{what} must be between 1 and {_MAX_LIMIT}")
    return number
