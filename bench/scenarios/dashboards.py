"""Dashboards under load: 10 users refreshing all four dashboards every 10 s through the router.

The requests are what Grafana sends (the same expansion as `rtdp grafana verify`: variables
resolved through the router, repeated rows and panels expanded, each panel's targets in one
/api/query body). Each user refreshes every dashboard every REFRESH_S, its panels 6 at a time (a
browser's connections per host). The router runs as `rtdp serve` in its own process, so its RSS is
its own. Figures: requests/s held against the rate offered, p50/p99 per panel type, errors, router
RSS; then the same load on VictoriaMetrics with the panels' queries in MetricsQL where it can answer
them alone (realtime panels without a rollup: downsample, rate and the cross-series aggregation).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import requests
import requests.adapters

from bench.results import Record
from bench.router_process import free_port, start_router_process, stop_router_process
from rtdp_dagster.config import Settings
from rtdp_dagster.grafana import datasource
from rtdp_dagster.grafana.build import committed_dashboards
from rtdp_dagster.grafana.grafana_time import auto_interval, panel_range, parse_relative
from rtdp_dagster.grafana.query_request import queried_targets, query_body
from rtdp_dagster.grafana.templating import Lookups, Scope, resolve_variables
from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.parse import parse_json_body
from rtdp_dagster.serving.timeparse import duration_ms

SCENARIO = "dashboards"
USERS, REFRESH_S, PANEL_CONCURRENCY = 10, 10.0, 6


@dataclass(frozen=True)
class PanelRequest:
    dashboard: str
    panel_type: str
    body: dict[str, Any]
    direct: list[dict[str, str]] | None  # VictoriaMetrics query_range params, None: it cannot answer alone


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, panel_type: str, ms: float, error: str | None) -> None:
        with self.lock:
            self.sent += 1
            self.latencies.setdefault(panel_type, []).append(ms)
            if error:
                self.errors.append(error)


def _panels(model: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str | None]]:
    """Every panel with the repeat variable of its row (as `rtdp grafana verify` walks them)."""
    row_repeat: str | None = None
    for panel in model.get("panels", []):
        if panel.get("type") == "row":
            row_repeat = panel.get("repeat") or None
            yield from ((inner, row_repeat) for inner in panel.get("panels", []))
            continue
        yield panel, row_repeat


def _scopes(scope: Scope, names: list[str]) -> list[Scope]:
    value_lists = [[(name, value) for value in scope.variables[name].values()] for name in names]
    return [scope.with_scoped(dict(combination)) for combination in itertools.product(*value_lists)]


def panel_requests(router_url: str, settings: Settings, now_ms: int) -> list[PanelRequest]:
    session = requests.Session()

    def get(path: str, params: dict[str, Any]) -> Any:
        response = session.get(f"{router_url}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    found = []
    for model in committed_dashboards().values():
        scope = resolve_variables(
            model.get("templating", {}).get("list", []), Lookups(get, datasource.LOOKUP_LIMIT), datasource.UID
        )
        dashboard_time = model.get("time", {"from": "now-6h", "to": "now"})
        for panel, row_repeat in _panels(model):
            targets = queried_targets(panel.get("targets", []))
            if not targets:
                continue
            raw_from, raw_to = panel_range(dashboard_time["from"], dashboard_time["to"], panel.get("timeFrom"))
            start_ms, end_ms = parse_relative(raw_from, now_ms), parse_relative(raw_to, now_ms)
            interval = auto_interval(start_ms, end_ms, int(panel.get("maxDataPoints") or 1000), panel.get("interval"))
            for scoped in _scopes(scope, [name for name in (row_repeat, panel.get("repeat")) if name]):
                body = query_body(
                    targets,
                    scoped,
                    start_ms,
                    None if raw_to == "now" else end_ms,
                    interval,
                    datasource.TSDB_VERSION,
                    datasource.TSDB_RESOLUTION,
                )
                kind = f"{panel.get('type', '?')} on {model.get('uid', '?')}"
                found.append(PanelRequest(model.get("uid", "?"), kind, body, _direct(body, settings, now_ms)))
    return found


def _direct(body: dict[str, Any], settings: Settings, now_ms: int) -> list[dict[str, str]] | None:
    """The panel's sub-queries as VictoriaMetrics query_range params, when the realtime TSDB alone answers
    them in MetricsQL (a downsample shorter than serve.realtime_below, no fill, plain aggregators)."""
    request = parse_json_body(orjson.dumps(body), now_ms, 10 * 366 * 86_400_000)
    realtime_below = duration_ms(settings.serve.realtime_below)
    direct = []
    for query in request.queries:
        downsample = query.downsample
        if (
            downsample is None
            or downsample.bucketing.kind != "fixed"
            or downsample.fill != "none"
            or downsample.bucketing.width_ms >= realtime_below
            or query.aggregator not in ("sum", "avg", "min", "max", "count")
        ):
            return None
        matchers = [matcher for item in query.filters for matcher in item.matchers()]
        width = downsample.bucketing.width_ms
        inner = f"{downsample.function}_over_time({metricsql.selector(query.metric, matchers)}[{width}ms])"
        if query.rate:
            inner = f"rate({metricsql.selector(query.metric, matchers)}[{width}ms])"
        by = ", ".join(metricsql.label_name(name) for name in query.group_by)
        direct.append(
            {
                "query": f"{query.aggregator} by ({by}) ({inner})",
                "start": f"{request.start_ms / 1000:.3f}",
                "end": f"{request.end_ms / 1000:.3f}",
                "step": f"{width}ms",
            }
        )
    return direct


def _load(
    send: Callable[[PanelRequest], str | None], panels: list[PanelRequest], duration_s: float, tally: Tally
) -> float:
    """USERS users, each refreshing every panel every REFRESH_S (staggered); returns the elapsed seconds."""
    stop_at = time.monotonic() + duration_s

    def one(panel: PanelRequest) -> None:
        began = time.perf_counter()
        try:
            error = send(panel)
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        # Panels VictoriaMetrics answers alone are told apart: their figures are compared with it.
        kind = panel.panel_type if panel.direct is None else f"{panel.panel_type}, VictoriaMetrics-answerable"
        tally.add(kind, (time.perf_counter() - began) * 1000, error)

    def user(number: int) -> None:
        time.sleep(number * REFRESH_S / USERS)
        user_pool = ThreadPoolExecutor(max_workers=PANEL_CONCURRENCY)
        while time.monotonic() < stop_at:
            refresh_started = time.monotonic()
            list(user_pool.map(one, panels))
            time.sleep(max(0.0, REFRESH_S - (time.monotonic() - refresh_started)))
        user_pool.shutdown()

    started = time.monotonic()
    users = [threading.Thread(target=user, args=(number,), daemon=True) for number in range(USERS)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join()
    return time.monotonic() - started


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _summary(side: str, tally: Tally, elapsed_s: float, offered: float, baseline: Tally | None) -> list[Record]:
    records = [
        Record(
            SCENARIO, f"{side}: requests/s held (offered {offered:.1f}/s)", round(tally.sent / elapsed_s, 2), "req/s"
        ),
        Record(SCENARIO, f"{side}: errors", len(tally.errors), "requests"),
    ]
    for panel_type, samples in sorted(tally.latencies.items()):
        theirs = baseline.latencies.get(panel_type) if baseline else None
        for name, figure in (("p50", statistics.median), ("p99", lambda s: float(np.percentile(s, 99)))):
            label = f"{side}: {panel_type} panels {name} ({len(samples)} requests)"
            baseline_ms = round(figure(theirs), 2) if theirs else None
            records.append(Record(SCENARIO, label, round(figure(samples), 2), "ms", baseline_ms))
    return records


def run(settings: Settings, seconds: float = 60.0, log=print) -> list[Record]:
    """Five minutes of load per side with the default --seconds 60 (duration = 5 x seconds)."""
    duration_s = 5 * seconds
    # The data the Grafana tests verify every panel with: every metric the dashboards read.
    from tests.grafana.workload import fill

    fill(settings)
    port = free_port()
    router = start_router_process(port, settings.run_dir / "logs" / "bench-router.log")
    router_url = f"http://127.0.0.1:{port}"
    try:
        panels = panel_requests(router_url, settings, int(time.time() * 1000))
        offered = USERS * len(panels) / REFRESH_S
        log(
            f"dashboards: {len(panels)} panel requests per refresh, {USERS} users every {REFRESH_S:g} s "
            f"({offered:.1f} requests/s offered) for {duration_s:.0f} s"
        )
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=USERS * PANEL_CONCURRENCY))

        def via_router(panel: PanelRequest) -> str | None:
            response = session.post(
                f"{router_url}/api/query",
                data=orjson.dumps(panel.body),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            orjson.loads(response.content)
            return None if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:200]}"

        rss, sampling = [], threading.Event()

        def sample_rss() -> None:
            while not sampling.wait(1.0):
                rss.append(_rss_mib(router.pid))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        routed = Tally()
        elapsed = _load(via_router, panels, duration_s, routed)
        sampling.set()
        sampler.join()
    finally:
        stop_router_process(router)
    direct_panels = [panel for panel in panels if panel.direct]

    def via_vm(panel: PanelRequest) -> str | None:
        for params in panel.direct or []:
            response = session.post(f"{settings.tsdb.realtime.url}/api/v1/query_range", data=params, timeout=30)
            orjson.loads(response.content)
            if response.status_code != 200:
                return f"HTTP {response.status_code}: {response.text[:200]}"
        return None

    direct = Tally()
    direct_elapsed = _load(via_vm, direct_panels, duration_s, direct)
    log(
        f"dashboards: router {routed.sent / elapsed:.1f} req/s, {len(routed.errors)} errors, RSS peak "
        f"{max(rss, default=0):.0f} MiB; VictoriaMetrics {direct.sent / direct_elapsed:.1f} req/s for the "
        f"{len(direct_panels)} of {len(panels)} panels it answers alone"
    )
    for error in sorted(set(routed.errors))[:5]:
        log(f"dashboards: router error: {error}")
    records = _summary("router", routed, elapsed, offered, direct)
    records.append(Record(SCENARIO, "router: RSS peak", round(max(rss, default=0.0), 1), "MiB"))
    records.append(Record(SCENARIO, "router: RSS at the end", round(rss[-1] if rss else 0.0, 1), "MiB"))
    records += _summary("VictoriaMetrics direct", direct, direct_elapsed, USERS * len(direct_panels) / REFRESH_S, None)
    return records
