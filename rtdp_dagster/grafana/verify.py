"""`rtdp grafana verify`: send every panel's query to the router exactly as Grafana would, and say
which panels show data.

Per dashboard: template variables are resolved through the router (metricFindQuery), repeated
rows and panels are expanded per value, and each panel's targets go to /api/query in one body
(see query_request). A panel has data when every one of its queries returns a series with points.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from rtdp_dagster.grafana import datasource
from rtdp_dagster.grafana.build import GRAFANA_DIR, committed_dashboards
from rtdp_dagster.grafana.grafana_time import auto_interval, panel_range, parse_relative
from rtdp_dagster.grafana.query_request import queried_targets, query_body
from rtdp_dagster.grafana.templating import Lookups, Scope, VariableError, resolve_variables
from rtdp_dagster.text_table import format_table

DATA, NO_DATA, ERROR = "data", "no data", "error"


class VerifyError(Exception):
    """The verification could not run at all (router unreachable, unreadable dashboards)."""


@dataclass(frozen=True)
class PanelResult:
    dashboard: str
    panel: str
    status: str
    series: int = 0
    points: int = 0
    detail: str = ""


class RouterClient:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s
        self.session = requests.Session()

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, f"{self.url}{path}", timeout=self.timeout_s, **kwargs)
        except requests.ConnectionError as exc:
            raise VerifyError(f"cannot reach the router at {self.url}: {_reason(exc)}") from None
        except requests.Timeout:
            raise VerifyError(f"the router at {self.url} did not answer {path} within {self.timeout_s:g} s") from None

    def get(self, path: str, params: dict[str, Any]) -> Any:
        response = self._request("GET", path, params=params)
        if response.status_code != 200:
            raise VariableError(f"GET {path} -> HTTP {response.status_code}: {_error_message(response)}")
        return response.json()

    def query(self, body: dict[str, Any]) -> requests.Response:
        return self._request("POST", "/api/query", json=body)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else text.splitlines()[0][:200]


def _error_message(response: requests.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or error)[:300]
    except (ValueError, AttributeError):
        return response.text[:300]


def _panels(model: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str | None]]:
    """Every panel with the repeat variable of the row it sits in (open rows own the panels after them)."""
    row_repeat: str | None = None
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            row_repeat = panel.get("repeat") or None
            for inner in panel.get("panels", []):
                yield inner, row_repeat
            continue
        yield panel, row_repeat


def _repeats(scope: Scope, names: list[str]) -> list[dict[str, str]]:
    """One scope per combination of the repeat variables' selected values."""
    value_lists = []
    for name in names:
        variable = scope.variables.get(name)
        if variable is None:
            raise VariableError(f"repeat by unknown variable {name!r}")
        value_lists.append([(name, value) for value in variable.values()])
    return [dict(combination) for combination in itertools.product(*value_lists)]


def _evaluate(response: requests.Response, targets: list[Mapping[str, Any]]) -> tuple[str, int, int, str]:
    if response.status_code != 200:
        return ERROR, 0, 0, f"HTTP {response.status_code}: {_error_message(response)}"
    try:
        results = response.json()
    except ValueError:
        return ERROR, 0, 0, "response is not JSON"
    if not isinstance(results, list):
        return ERROR, 0, 0, f"response is not a list of series: {str(results)[:200]}"
    points_per_query = [0] * len(targets)
    series = points = 0
    for result in results:
        index = (result.get("query") or {}).get("index") if isinstance(result, dict) else None
        if datasource.TSDB_VERSION == 3 and not isinstance(index, int):
            # Grafana maps 2.4 results to targets by query.index; without it the panel fails.
            return ERROR, 0, 0, "a result has no query.index (required in OpenTSDB 2.4 mode)"
        dps = result.get("dps") or {}
        count = len(dps)
        series += 1
        points += count
        if isinstance(index, int) and 0 <= index < len(targets):
            points_per_query[index] += count
    empty = [
        f"{target.get('refId', '?')} ({target['metric']})"
        for target, count in zip(targets, points_per_query, strict=True)
        if count == 0
    ]
    if empty:
        return NO_DATA, series, points, "no points for " + ", ".join(empty)
    return DATA, series, points, ""


def verify_dashboard(model: Mapping[str, Any], client: RouterClient, now_ms: int) -> list[PanelResult]:
    title = model.get("title", model.get("uid", "?"))
    lookups = Lookups(client.get, datasource.LOOKUP_LIMIT)
    try:
        scope = resolve_variables(model.get("templating", {}).get("list", []), lookups, datasource.UID)
    except VariableError as exc:
        return [PanelResult(title, "(variables)", ERROR, detail=str(exc))]
    dashboard_time = model.get("time", {"from": "now-6h", "to": "now"})
    results = []
    for panel, row_repeat in _panels(model):
        targets = queried_targets(panel.get("targets", []))
        if not targets:
            continue
        repeat_names = [name for name in (row_repeat, panel.get("repeat")) if name]
        try:
            scopes = _repeats(scope, repeat_names)
        except VariableError as exc:
            results.append(PanelResult(title, panel.get("title", "?"), ERROR, detail=str(exc)))
            continue
        for values in scopes:
            results.append(
                _verify_panel(title, panel, targets, scope.with_scoped(values), dashboard_time, client, now_ms)
            )
    return results


def _verify_panel(
    dashboard_title: str,
    panel: Mapping[str, Any],
    targets: list[Mapping[str, Any]],
    scope: Scope,
    dashboard_time: Mapping[str, str],
    client: RouterClient,
    now_ms: int,
) -> PanelResult:
    name = scope.replace(panel.get("title", "?"))
    if scope.scoped:
        name += " [" + ", ".join(f"{key}={value}" for key, value in scope.scoped.items()) + "]"
    raw_from, raw_to = panel_range(dashboard_time["from"], dashboard_time["to"], panel.get("timeFrom"))
    try:
        start_ms, end_ms = parse_relative(raw_from, now_ms), parse_relative(raw_to, now_ms)
        interval = auto_interval(start_ms, end_ms, int(panel.get("maxDataPoints") or 1000), panel.get("interval"))
    except ValueError as exc:
        return PanelResult(dashboard_title, name, ERROR, detail=str(exc))
    body = query_body(
        targets,
        scope,
        start_ms,
        None if raw_to == "now" else end_ms,
        interval,
        datasource.TSDB_VERSION,
        datasource.TSDB_RESOLUTION,
    )
    status, series, points, detail = _evaluate(client.query(body), targets)
    return PanelResult(dashboard_title, name, status, series, points, detail)


def verify(router_url: str, root: Path = GRAFANA_DIR, timeout_s: float = 30.0) -> list[PanelResult]:
    """Every panel of every committed dashboard against the router at router_url."""
    dashboards = committed_dashboards(root)
    if not dashboards:
        raise VerifyError(f"no dashboards under {root / 'dashboards'} (run `rtdp grafana build`)")
    client = RouterClient(router_url, timeout_s)
    now_ms = int(time.time() * 1000)
    return [result for model in dashboards.values() for result in verify_dashboard(model, client, now_ms)]


def format_results(results: list[PanelResult]) -> str:
    header = ("DASHBOARD", "PANEL", "STATUS", "SERIES", "POINTS", "DETAIL")
    rows = [(r.dashboard, r.panel, r.status, r.series, r.points, r.detail) for r in results]
    failing = sum(1 for r in results if r.status != DATA)
    return format_table(header, rows) + f"\n{len(results) - failing} of {len(results)} panels have data"


def results_json(results: list[PanelResult]) -> list[dict[str, Any]]:
    return [asdict(result) for result in results]
