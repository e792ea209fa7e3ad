"""The /api/query body Grafana's OpenTSDB data source sends from the browser for one panel.

Mirrors OpenTsDatasource.query / convertTargetToQuery / performTimeSeriesQuery: start (and end
unless the range ends at ``now``) in ms, every visible target with a metric in one body, the
downsample string ``<interval>-<aggregator>[-<fill>]``, rate options, filters or tags with
template variables in 'pipe' format, msResolution and (for 2.4) showQuery.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from rtdp_dagster.grafana.templating import Scope

_FRACTIONAL_SECONDS = re.compile(r"\.[0-9]+s")


def convert_target(target: Mapping[str, Any], scope: Scope, interval: str, tsdb_version: int) -> dict[str, Any]:
    query: dict[str, Any] = {"metric": scope.replace(target["metric"], "pipe"), "aggregator": "avg"}
    if target.get("aggregator"):
        query["aggregator"] = scope.replace(target["aggregator"])
    if target.get("shouldComputeRate"):
        rate_options: dict[str, Any] = {"counter": bool(target.get("isCounter"))}
        if target.get("counterMax"):
            rate_options["counterMax"] = int(target["counterMax"])
        if target.get("counterResetValue"):
            rate_options["resetValue"] = int(target["counterResetValue"])
        if tsdb_version >= 2:
            # Grafana tests `ResetValue` (capital R, never set), so only counterMax decides.
            rate_options["dropResets"] = not rate_options.get("counterMax")
        query["rate"], query["rateOptions"] = True, rate_options
    if not target.get("disableDownsampling"):
        downsample_interval = scope.replace(target.get("downsampleInterval") or interval)
        if _FRACTIONAL_SECONDS.search(downsample_interval):
            downsample_interval = f"{_js_number(float(downsample_interval.rstrip('s')) * 1000)}ms"
        # An unset aggregator reaches the server as the text "undefined", as in Grafana.
        query["downsample"] = f"{downsample_interval}-{target.get('downsampleAggregator') or 'undefined'}"
        fill = target.get("downsampleFillPolicy")
        if fill and fill != "none":
            query["downsample"] += f"-{fill}"
    if target.get("filters"):
        query["filters"] = [
            {
                **copy.deepcopy(dict(item)),
                "tagk": scope.replace(item.get("tagk"), "pipe"),
                "filter": scope.replace(item.get("filter"), "pipe"),
            }
            for item in target["filters"]
        ]
    elif target.get("tags") is not None:
        query["tags"] = {key: scope.replace(value, "pipe") for key, value in target["tags"].items()}
    if target.get("explicitTags"):
        query["explicitTags"] = True
    return query


def _js_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def queried_targets(targets: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The targets that become queries, in order: a metric, and not hidden."""
    return [target for target in targets if target.get("metric") and not target.get("hide")]


def query_body(
    targets: list[Mapping[str, Any]],
    scope: Scope,
    start_ms: int,
    end_ms: int | None,
    interval: str,
    tsdb_version: int,
    tsdb_resolution: int,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start": start_ms,
        "queries": [convert_target(target, scope, interval, tsdb_version) for target in queried_targets(targets)],
        "msResolution": tsdb_resolution == 2,
        "globalAnnotations": True,
    }
    if tsdb_version == 3:
        body["showQuery"] = True
    if end_ms is not None:
        body["end"] = end_ms
    return body
