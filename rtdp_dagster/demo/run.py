"""`rtdp demo`: the whole platform on the local stack, fed by three workloads, with a summary.

Steps (each prints its progress): write the demo configuration; load master data; start the
stack with `rtdp ingest`, `rtdp stream`, `rtdp serve` and Dagster (webserver + daemon); turn every
schedule and sensor on; wait until the replayed history is in bronze; backfill silver and every
rollup over it (an asset backfill the daemon runs, visible in the UI) and check each of its days
of bronze (bronze's checks have a daily schedule of their own); verify every dashboard
panel through the router; print the summary and the URLs. Then it keeps running until Ctrl-C
(or --duration) and stops what it started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtdp_dagster.config import CONFIG_ENV, BatchConfig, FreshnessConfig, Settings, load_settings
from rtdp_dagster.demo.dagster_api import AHEAD_OF_SCHEDULES, BackfillProgress, DagsterApi
from rtdp_dagster.demo.landing import HistoryNotLanded, wait_for_history
from rtdp_dagster.demo.status import BackfillWatch, StatusLine
from rtdp_dagster.demo.summary import DemoSummary, collection_figures, format_summary, table_counts
from rtdp_dagster.demo.workload import write_demo_config
from rtdp_dagster.serving.address import local_router_url
from rtdp_dagster.text_table import format_table

DAILY_ASSETS = ("silver", "rollup_1m", "rollup_1h", "rollup_1d")
COARSE_ASSETS = {"rollup_1w": "weekly", "rollup_1mo": "monthly", "rollup_1y": "yearly"}
DEFAULT_START_DATE: str = BatchConfig.model_fields["start_date"].default
# Right after the backfill a rollup may still be publishing its window (an automation run), or a
# series written moments ago may not be searchable yet: panels without data are verified again
# for this long before the summary counts them.
PANELS_SETTLE_S = 90.0
# Asset checks still running (a run materialized just before the summary, such as the late-data sensor's
# re-run of a day the waves completed) are waited for this long by default.
CHECKS_SETTLE_S = 180.0


@dataclass(frozen=True)
class DemoOptions:
    duration_s: float | None = None
    history_days: float = 2.0
    small: bool = False
    # Where the summary is written as JSON too (for scripts and the end-to-end test).
    summary_file: Path | None = None
    # Where screenshots of the Dagster UI go (the README's pictures); None: none taken.
    screenshots: Path | None = None
    timeout_s: float = 1800.0
    # How long the summary waits for asset checks still running; 0: it lists them as not passed yet.
    checks_wait_s: float = CHECKS_SETTLE_S


class DemoError(Exception):
    """A step of the demo did not complete; the message names the step and the log to read."""


def _anchor_ms(folder: Path) -> int:
    """The replay's anchor, kept across demo runs on one run folder so replayed points line up."""
    anchor_file = folder / "anchor_ms"
    if anchor_file.exists():
        return int(anchor_file.read_text())
    anchor = int(time.time()) // 60 * 60_000
    folder.mkdir(parents=True, exist_ok=True)
    anchor_file.write_text(str(anchor))
    return anchor


def prepare(options: DemoOptions, log: Callable[[str], None]) -> Settings:
    base = load_settings()
    folder = base.run_dir / "demo"
    config = write_demo_config(base, folder / "rtdp.yaml", _anchor_ms(folder), options.history_days, options.small)
    # Every service the stack starts, and every Dagster run, reads this configuration.
    os.environ[CONFIG_ENV] = str(config.resolve())
    settings = load_settings()
    sources = ", ".join(source.name for source in settings.collection.sources)
    log(f"demo configuration {config} (sources: {sources})")
    if not settings.nab_data_dir.is_dir():
        log(f"NAB data not found at {settings.nab_data_dir}: replay skipped (see README, 'Data')")
    for source in settings.collection.sources:
        if source.name == "nab_replay" and source.waves.history_s < options.history_days * 86_400:
            log(
                f"NAB replay: {source.waves.history_s / 3600:.1f} h of history, from the middle of the files' "
                "last real outage on (a gap no wave can fill)"
            )
    return settings


def load_master_data(settings: Settings, log: Callable[[str], None]) -> None:
    from rtdp_dagster.master_data import load_master_data as read_files
    from rtdp_dagster.master_data.load import load_into_delta, summary_lines
    from rtdp_dagster.spark.session import connect

    result = load_into_delta(
        connect(settings), settings.delta.table_path(settings.master_data.table), read_files(settings.master_data.dir)
    )
    for line in summary_lines(result):
        log(f"  master data: {line}")


def backfill_ranges(
    history_days: float, now: dt.datetime, silver_deadline_cron: str, start_date: str = DEFAULT_START_DATE
) -> dict[str, tuple[str, str]]:
    """The closed days of the replayed history for the daily assets, and the weeks, months and
    years containing them for the coarse rollups. The range also reaches the day silver's
    freshness check expects (before its deadline, the day before yesterday), so a short history
    started after midnight does not leave that check failing on a day nobody ran."""
    from rtdp_dagster.batch.partitions import batch_partitions
    from rtdp_dagster.quality.freshness import day_expected_by

    partitions = batch_partitions(start_date)

    today = now.date()
    first = min(
        today - dt.timedelta(days=max(1, int(history_days + 0.999))), day_expected_by(silver_deadline_cron, now)
    )
    last = today - dt.timedelta(days=1)
    ranges = {asset: (first.isoformat(), last.isoformat()) for asset in DAILY_ASSETS}
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(today, dt.time(), dt.UTC)
    for asset, name in COARSE_ASSETS.items():
        definition = getattr(partitions, name)
        keys = [
            key
            for key in definition.get_partition_keys()
            if definition.time_window_for_partition_key(key).start < end
            and definition.time_window_for_partition_key(key).end > start
        ]
        if keys:
            ranges[asset] = (keys[0], keys[-1])
    return ranges


def bronze_check_runs(daily_range: tuple[str, str]) -> dict[str, dict]:
    """Run configs of ``bronze_quality_job`` for each day of the daily assets' range: day -> config.

    Bronze is the stream's, not a Dagster materialization: its checks run only by that job, on its
    daily schedule (yesterday, at 00:20 UTC), so a demo that is not running then would leave them
    never run. The demo checks every day of bronze it backfills from, as the schedule would have.
    """
    first, last = (dt.date.fromisoformat(day) for day in daily_range)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return {day.isoformat(): {"ops": {"bronze_quality": {"config": {"day": day.isoformat()}}}} for day in days}


def run_backfill(
    api: DagsterApi,
    options: DemoOptions,
    freshness: FreshnessConfig,
    start_date: str,
    log: Callable[[str], None],
    watch: BackfillWatch | None = None,
) -> tuple[str, BackfillProgress]:
    """Launch the history's backfill and bronze's checks of its days, and follow the backfill to its end;
    ``watch`` sees each progress read (for an ETA)."""
    now = dt.datetime.now(dt.UTC)
    ranges = backfill_ranges(options.history_days, now, freshness.silver_deadline_cron, start_date)
    backfill_id = api.launch_asset_backfill(ranges, title="rtdp demo: replayed history")
    log(f"backfill {backfill_id}: " + ", ".join(f"{a} {f}..{t}" for a, (f, t) in ranges.items()))
    for day, run_config in bronze_check_runs(ranges["silver"]).items():
        run_id = api.launch_run("bronze_quality_job", run_config, AHEAD_OF_SCHEDULES)
        log(f"bronze checks of {day}: run {run_id[:8]}")
    watch = watch or BackfillWatch()
    watch.started = time.monotonic()
    progress = watch.progress = api.backfill_progress(backfill_id)
    last = None
    deadline = time.monotonic() + options.timeout_s
    while not progress.done and time.monotonic() < deadline:
        figures = (progress.status, progress.materialized, progress.failed, progress.in_progress)
        if figures != last:
            log(
                f"  backfill {progress.status}: {progress.materialized}/{progress.targeted} asset partitions "
                f"materialized, {progress.in_progress} in progress, {progress.failed} failed"
            )
            last = figures
        time.sleep(3)
        progress = watch.progress = api.backfill_progress(backfill_id)
    log(
        f"  backfill {progress.status}: {progress.materialized}/{progress.targeted} materialized, "
        f"{progress.failed} failed"
    )
    return backfill_id, progress


def take_screenshots(settings: Settings, backfill_id: str, folder: Path, log: Callable[[str], None]) -> None:
    """The Dagster UI as the README shows it: the batch asset graph, the backfill, checks, automation."""
    from rtdp_dagster.demo.browser import BrowserError, screenshot

    ui = f"http://{settings.stack.bind_host}:{settings.dagster.webserver_port}"
    pages = {
        "dagster-asset-graph": "/locations/rtdp/asset-groups/batch",
        "dagster-backfill": f"/runs/b/{backfill_id}?tab=runs",
        "dagster-asset-checks": "/assets/silver?view=checks",
        "dagster-automation": "/automation",
    }
    for name, page in pages.items():
        try:
            log(f"  screenshot {screenshot(ui + page, folder / f'{name}.png')}")
        except BrowserError as exc:  # pictures are a nicety: the demo goes on without them
            log(f"  screenshot {name} skipped: {exc}")


def settled_panels(settings: Settings, log: Callable[[str], None] = print) -> list:
    """Every dashboard panel verified through the router, panels without data again until they
    have some or PANELS_SETTLE_S has passed."""
    from rtdp_dagster.grafana.verify import DATA, verify
    from rtdp_dagster.tsdb.query import force_flush

    deadline = time.monotonic() + PANELS_SETTLE_S
    while True:
        for endpoint in (settings.tsdb.realtime, settings.tsdb.history):
            force_flush(endpoint.url, settings.tsdb.timeout_s)
        panels = verify(local_router_url(settings.serve))
        without = [f"{p.dashboard} / {p.panel}" for p in panels if p.status != DATA]
        if not without or time.monotonic() >= deadline:
            return panels
        log(f"  {len(without)} panel(s) without data yet ({', '.join(without)}); verifying again in 10 s")
        time.sleep(10)


def settled_checks(
    api: DagsterApi, log: Callable[[str], None] = print, wait_s: float = CHECKS_SETTLE_S
) -> list[dict[str, str]]:
    """The asset checks' latest results, read again while some are still running (a run that
    materialized just before the summary) until none is or wait_s has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        checks = api.latest_checks()
        running = [f"{check['asset']}:{check['check']}" for check in checks if check["status"] == "IN_PROGRESS"]
        if not running or time.monotonic() >= deadline:
            return checks
        log(f"  {len(running)} asset check(s) still running ({', '.join(running)}); reading again in 5 s")
        time.sleep(5)


def judged_checks(checks: list[dict[str, str]]) -> tuple[dict[str, int], list[str], list[str]]:
    """The checks by status; those failed; those neither passed nor failed (not run, or still running),
    with their status: each as asset:check."""
    counts: dict[str, int] = {}
    failed, unsettled = [], []
    for check in checks:
        status, name = check["status"], f"{check['asset']}:{check['check']}"
        counts[status] = counts.get(status, 0) + 1
        if status in ("FAILED", "EXECUTION_FAILED"):
            failed.append(name)
        elif status != "SUCCEEDED":
            unsettled.append(f"{name} ({status})")
    return counts, failed, unsettled


def collect_summary(
    settings: Settings,
    api: DagsterApi,
    backfill: BackfillProgress | None,
    log: Callable[[str], None] = print,
    checks_wait_s: float = CHECKS_SETTLE_S,
) -> DemoSummary:
    from rtdp_dagster.grafana.verify import DATA

    summary = DemoSummary()
    summary.waves, summary.late_caught = collection_figures(settings)
    summary.table_rows = table_counts(settings)
    checks = settled_checks(api, log, checks_wait_s)
    summary.checks, summary.failed_checks, summary.unsettled_checks = judged_checks(checks)
    panels = settled_panels(settings, log)
    summary.panels = {"total": len(panels), "data": sum(1 for p in panels if p.status == DATA)}
    summary.panels_without_data = [f"{p.dashboard} / {p.panel}: {p.status}" for p in panels if p.status != DATA]
    if backfill is not None:
        summary.backfill = {
            "status": backfill.status,
            "targeted": backfill.targeted,
            "materialized": backfill.materialized,
            "failed": backfill.failed,
        }
    summary.urls = service_urls(settings)
    return summary


def service_urls(settings: Settings) -> dict[str, str]:
    """What a person can open: shown as soon as the services are up, and again in the summary."""
    host = settings.stack.bind_host
    return {
        "Dagster UI": f"http://{host}:{settings.dagster.webserver_port}",
        "query router (OpenTSDB API)": local_router_url(settings.serve),
        "realtime TSDB (VictoriaMetrics)": f"http://{host}:{settings.stack.victoria_metrics.realtime.http_port}",
        "history TSDB (VictoriaMetrics)": f"http://{host}:{settings.stack.victoria_metrics.history.http_port}",
        "logs": str(settings.log_dir),
    }


def stop_spark_client() -> None:
    """End this process's Spark Connect session before its server stops: a session left open keeps
    retrying the stopped server from threads the interpreter waits for, so the demo never exits."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        return
    try:
        session.stop()
    except Exception as exc:  # the server may be gone already (Ctrl-C during start-up); nothing to release then
        print(f"  Spark Connect session not stopped cleanly: {exc}", flush=True)


def run_demo(options: DemoOptions, log: Callable[[str], None] = print) -> DemoSummary:
    """Run the demo; Ctrl-C (KeyboardInterrupt) at any step stops what it started."""
    from rtdp_dagster.stack import manager

    began = time.monotonic()
    settings = prepare(options, log)
    already_running = {p.spec.name for p in manager.processes(settings) if p.pid() is not None}
    try:
        log("starting the stack: Kafka, VictoriaMetrics x2, Spark Connect, stream, ingest, router, Dagster ...")
        manager.up(settings, log=lambda line: log(f"  {line}"))
        load_master_data(settings, log)
        api = DagsterApi(f"http://{settings.stack.bind_host}:{settings.dagster.webserver_port}")
        log(f"schedules and sensors on: {', '.join(api.start_all_automations()) or 'already on'}")
        log(f"ready after {time.monotonic() - began:.0f} s: open these while the demo works (the summary follows)")
        log(format_table(("WHAT", "URL"), list(service_urls(settings).items())))
        with StatusLine(settings.run_dir / "stream" / "heartbeat.json", log) as status:
            log("waiting for the replayed history to land in bronze ...")
            try:
                wait_for_history(settings, log, options.timeout_s, since_ms=int(time.time() * 1000))
            except HistoryNotLanded as exc:
                raise DemoError(str(exc)) from None
            status.backfill = BackfillWatch()
            backfill_id, backfill = run_backfill(
                api, options, settings.quality.freshness, settings.batch.start_date, log, status.backfill
            )
        if options.screenshots:
            take_screenshots(settings, backfill_id, options.screenshots, log)
        summary = collect_summary(settings, api, backfill, log, options.checks_wait_s)
        log(format_summary(summary))
        if options.summary_file:
            options.summary_file.write_text(json.dumps(summary.as_dict(), indent=2, default=str))
        if options.duration_s is None:
            log("running; Ctrl-C stops everything the demo started")
        while options.duration_s is None or time.monotonic() - began < options.duration_s:
            time.sleep(1.0)
        return summary
    finally:
        log("stopping what the demo started ...")
        stop_spark_client()
        for process in reversed(manager.processes(settings)):
            if process.spec.name not in already_running and process.stop(settings.stack.stop_timeout_s):
                log(f"  {process.spec.name}: stopped")
