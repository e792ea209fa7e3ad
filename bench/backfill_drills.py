"""Fault drills during a Dagster backfill: a Spark worker, the history TSDB or the Dagster daemon killed
with kill -9 while an asset backfill of past days runs, under the collectors' own load.

Each drill runs the platform of ``bench.drills`` (the load source through `rtdp stream` and `rtdp ingest`)
with Dagster (webserver + daemon on the cluster's PostgreSQL) and a second synthetic source whose wave 1
collects ``HISTORY_DAYS`` whole closed days of history at its first start (``waves.history_s``, the way
the platform collects a new source's past), at a coarse cadence:

1. the history lands in bronze (``rtdp_dagster.demo.landing.wait_for_history``, the demo's wait);
2. the demo's asset backfill of those days (``backfill_ranges``: silver and 1m/1h/1d over the closed days,
   1w/1mo/1y over the periods containing them), launched through the Dagster GraphQL API so the daemon
   runs it (``BackfillPolicy.single_run``: one run per range);
3. the fault, at the moment it hurts (see each fault), the part brought back with `rtdp stack up`;
4. the backfill followed to its end; a backfill that ended with failed partitions is launched again over
   the same ranges, the operator's documented remedy (the README: every run replaces exactly its window,
   so re-running a backfill is idempotent). The platform configures no run retries;
5. the history TSDB against the rollups computed in pandas from the source's truth (every published point
   once: count, sum, min, max, first, last per series, bucket and part), as the backfill left it; if it
   is not exact, the platform's repair (re-publishing = the same backfill again) and the check again;
6. the collectors stopped, the stream drained, and the reconciliations: ``bench.drills.reconcile`` for the
   load source (Kafka offsets against bronze, silver, 1m/1h/1d and the realtime TSDB against its truth)
   and, for the backfilled days, silver and every rollup level (1m to 1y) against pandas.

The catch-up waves 2 and 3 are left out (their schedules tick on 1 January only): their first run re-reads
a source from wave 1's origin, which would double the history in bronze and set the late-data sensor off
on the very days being backfilled; every drill measures wave 1's load.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from bench.drills import (
    DRILLS,
    SOURCE_METRICS,
    Cluster,
    Drill,
    DrillPlatform,
    DrillResult,
    FaultContext,
    Watcher,
    _log_excerpt,
    _near,
    collected_span,
    compare_rollups,
    log,
    pandas_rollup,
    reconcile,
    summary_line,
    timeline_rows,
    truth_frame,
    wind_down,
)
from rtdp_dagster.config import Settings
from rtdp_dagster.demo.dagster_api import BackfillProgress, DagsterApi, DagsterApiError
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.process import port_in_use, wait_until

# Two closed days: the backfill runs over more than one partition (one single_run range) and its 1d level
# publishes a month part twice over.
HISTORY_DAYS = 2
HISTORY_CADENCE_S = 300.0
HISTORY_HOSTS = 20  # x 7 metrics: 140 series, 40,320 points a day
# The history source's first window starts this much before the first backfilled day's midnight: its
# ticker plans a little after the configuration is written.
HISTORY_MARGIN_S = 300.0
NEVER_CRON = "0 0 1 1 *"  # the catch-up waves' schedules (see the module docstring)
AGGREGATES = ("count", "sum", "min", "max", "first", "last")
# A history TSDB sample's identity.
HISTORY_KEY = ["metric", "host", "rollup", "agg", "part", "ts"]
BACKFILL_TIMEOUT_S = 1800.0
RELAUNCHES = 2
COMPLETE = {"COMPLETED", "COMPLETED_SUCCESS"}
DAY_MS = 86_400_000


# --- the platform: the drill's load plus a source with days of history ------------------------------


def history_span_s(now: dt.datetime, days: int, margin_s: float = HISTORY_MARGIN_S) -> float:
    """``waves.history_s`` reaching back to ``margin_s`` before the midnight ``days`` days before today."""
    midnight = dt.datetime.combine(now.date() - dt.timedelta(days=days), dt.time(), dt.UTC)
    return (now - midnight).total_seconds() + margin_s


@dataclass
class BackfillDrillPlatform(DrillPlatform):
    with_dagster: bool = True

    @property
    def history_source_name(self) -> str:
        return f"drill_{self.slug}_history"[:64]

    @property
    def history_metric_prefix(self) -> str:
        return f"{self.metric_prefix}history."

    def config(self, collecting: bool) -> dict[str, Any]:
        config = super().config(collecting)
        config["collection"]["sources"].append(
            {
                "kind": "synthetic",
                "name": self.history_source_name,
                "namespace": f"synthetic.drill.{self.slug}.history.v1.0.0",
                "seed": 1,
                "cadence_s": HISTORY_CADENCE_S,
                "sites": 1,
                "hosts_per_site": HISTORY_HOSTS,
                "metrics": [
                    {"name": f"{self.history_metric_prefix}{metric}", "shape": shape}
                    for metric, shape in SOURCE_METRICS
                ],
                # The past in hour windows (48 a day), then the present like any source.
                "waves": {
                    "window_s": 60.0,
                    "max_window_s": 3600.0,
                    "history_s": history_span_s(dt.datetime.now(dt.UTC), HISTORY_DAYS),
                },
            }
        )
        config["collection"]["wave2_cron"] = NEVER_CRON
        config["collection"]["wave3_cron"] = NEVER_CRON
        return config


def dagster_url(settings: Settings) -> str:
    return f"http://{settings.stack.bind_host}:{settings.dagster.webserver_port}"


# --- what the operator sees in Dagster ----------------------------------------------------------------

_BACKFILL_RUNS = """
query($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status startTime endTime assetSelection { path }
                            stepStats { stepKey status startTime endTime } } }
    ... on PythonError { message }
  }
}"""
_DAEMONS = """
query {
  instance { daemonHealth { allDaemonStatuses { daemonType healthy required lastHeartbeatTime } } }
}"""
_TERMINATE = """
mutation($runId: String!) {
  terminateRun(runId: $runId, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY) {
    __typename ... on PythonError { message }
  }
}"""
_CANCEL_BACKFILL = """
mutation($id: String!) {
  cancelPartitionBackfill(backfillId: $id) { __typename ... on PythonError { message } }
}"""
# The lines of the Dagster log that say what failed: step and run failures and the exceptions' last line.
DAGSTER_FAILURES = re.compile(r"STEP_FAILURE|RUN_FAILURE|^\w+(\.\w+)*(Error|Exception): ")
UNFINISHED_RUNS = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED", "CANCELING"}


class BackfillApi(DagsterApi):
    """The demo's GraphQL client, plus the runs of a backfill, the daemons' health and the operator's
    clean-up of a stuck backfill."""

    def backfill_runs(self, backfill_id: str) -> list[dict[str, Any]]:
        variables = {"filter": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}}
        runs = self._ok(self._call(_BACKFILL_RUNS, variables)["runsOrError"], "runs of the backfill")
        return sorted(runs["results"], key=lambda run: run.get("startTime") or float("inf"))

    def daemons(self) -> dict[str, bool]:
        statuses = self._call(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return {row["daemonType"]: bool(row["healthy"]) for row in statuses if row["required"]}

    def terminate_run(self, run_id: str) -> None:
        self._ok(self._call(_TERMINATE, {"runId": run_id})["terminateRun"], f"terminate {run_id}")

    def cancel_backfill(self, backfill_id: str) -> None:
        self._ok(self._call(_CANCEL_BACKFILL, {"id": backfill_id})["cancelPartitionBackfill"], "cancel backfill")


def backfill_complete(progress: BackfillProgress) -> bool:
    """Every targeted asset partition materialized, none failed."""
    return (
        progress.status in COMPLETE
        and progress.failed == 0
        and progress.targeted > 0
        and progress.materialized == progress.targeted
    )


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A run as the operator's record keeps it: id, status, assets, seconds, each step's status."""
    start, end = run.get("startTime"), run.get("endTime")
    return {
        "run_id": run["runId"][:8],
        "status": run["status"],
        "assets": sorted("/".join(key["path"]) for key in run.get("assetSelection") or []),
        "seconds": round(end - start, 1) if start and end else None,
        "steps": {step["stepKey"]: step["status"] for step in run.get("stepStats") or []},
    }


@dataclass
class BackfillAttempt:
    """One launch of the backfill, followed to its end."""

    backfill_id: str
    why: str
    launched_at: float
    ended_at: float | None = None
    status: str = "REQUESTED"
    targeted: int = 0
    materialized: int = 0
    failed: int = 0
    # (s after launch, status, materialized, failed, in progress), on each change; "unreachable" while
    # the webserver did not answer.
    progress: list[tuple[float, str, int, int, int]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    stuck_runs_terminated: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return backfill_complete(BackfillProgress(self.status, self.targeted, self.materialized, self.failed, 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "backfill_id": self.backfill_id,
            "why": self.why,
            "status": self.status,
            "complete": self.complete,
            "targeted": self.targeted,
            "materialized": self.materialized,
            "failed": self.failed,
            "seconds": None if self.ended_at is None else round(self.ended_at - self.launched_at, 1),
            "progress": self.progress,
            "runs": self.runs,
            "stuck_runs_terminated": self.stuck_runs_terminated,
        }


def follow_backfill(api: BackfillApi, attempt: BackfillAttempt, timeout_s: float = BACKFILL_TIMEOUT_S) -> None:
    """Poll the backfill until it ends (or timeout_s); a webserver that does not answer (Dagster being
    restarted) is a sample too."""
    last: tuple | None = None
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            progress = api.backfill_progress(attempt.backfill_id)
            sample = (progress.status, progress.materialized, progress.failed, progress.in_progress)
            attempt.status, attempt.targeted = progress.status, progress.targeted
            attempt.materialized, attempt.failed = progress.materialized, progress.failed
        except DagsterApiError:
            progress, sample = None, ("unreachable", -1, -1, -1)
        if sample != last:
            attempt.progress.append((round(time.time() - attempt.launched_at, 1), *sample))
            log(f"backfill {attempt.backfill_id}: {sample[0]} {sample[1]}/{attempt.targeted}, failed {sample[2]}")
            last = sample
        if progress is not None and progress.done:
            attempt.ended_at = time.time()
            break
        time.sleep(3)
    with contextlib.suppress(DagsterApiError):
        attempt.runs = [run_summary(run) for run in api.backfill_runs(attempt.backfill_id)]


def clear_stuck_backfill(api: BackfillApi, attempt: BackfillAttempt) -> None:
    """What an operator does with a backfill that never ends: cancel its unfinished runs and the backfill."""
    with contextlib.suppress(DagsterApiError):
        for run in api.backfill_runs(attempt.backfill_id):
            if run["status"] in UNFINISHED_RUNS:
                api.terminate_run(run["runId"])
                attempt.stuck_runs_terminated.append(run["runId"][:8])
        api.cancel_backfill(attempt.backfill_id)


def operator_view(settings: Settings, api: BackfillApi, backfill_id: str | None) -> dict[str, Any]:
    """What an operator sees now: `stack status` rows not healthy, the backfill, its runs, the daemons."""
    view: dict[str, Any] = {
        "stack_status": {row.name: row.state for row in manager.status(settings) if row.state != "healthy"}
    }
    try:
        view["daemons_unhealthy"] = sorted(name for name, healthy in api.daemons().items() if not healthy)
        if backfill_id is not None:
            progress = api.backfill_progress(backfill_id)
            done = f"{progress.materialized}/{progress.targeted}"
            view["backfill"] = f"{progress.status} {done}, failed {progress.failed}"
            view["runs"] = [
                {key: run[key] for key in ("run_id", "status", "steps")}
                for run in map(run_summary, api.backfill_runs(backfill_id))
            ]
    except DagsterApiError as exc:
        view["dagster"] = str(exc)[:200]
    return view


# --- the faults ---------------------------------------------------------------------------------------


@dataclass
class BackfillFaultContext(FaultContext):
    api: BackfillApi | None = None
    backfill_id: str = ""
    # What the operator saw while the part was away (`stack status`, the backfill, its runs, the daemons).
    dagster_during: dict[str, Any] = field(default_factory=dict)

    def observe(self) -> None:
        assert self.api is not None
        self.snapshot_status()
        self.dagster_during = operator_view(self.settings, self.api, self.backfill_id)
        self.note(f"operator saw: {self.dagster_during}")

    def step_in_progress(self) -> str | None:
        """The step of the backfill's runs that is running now, if any."""
        assert self.api is not None
        with contextlib.suppress(DagsterApiError):
            for run in self.api.backfill_runs(self.backfill_id):
                for step in run.get("stepStats") or []:
                    if step["status"] == "IN_PROGRESS":
                        return step["stepKey"]
        return None


def rows_inserted(metrics_text: str, kind: str) -> float:
    """VictoriaMetrics' ``vm_rows_inserted_total{type=kind}`` from its /metrics text (0 when absent)."""
    pattern = re.compile(r'^vm_rows_inserted_total\{type="' + re.escape(kind) + r'"\}\s+(\S+)$', re.MULTILINE)
    found = pattern.search(metrics_text)
    return float(found.group(1)) if found else 0.0


def history_puts(settings: Settings) -> float:
    """Points the history TSDB took over HTTP put so far (what publishing rollups sends)."""
    instance = settings.stack.victoria_metrics.history
    text = requests.get(f"http://{settings.stack.bind_host}:{instance.http_port}/metrics", timeout=5).text
    return rows_inserted(text, "opentsdbhttp")


def wait_for_publishing(ctx: BackfillFaultContext, timeout_s: float = 1200) -> bool:
    """Until the backfill's run is putting rollups into the history TSDB (its put counter moves); False if
    the backfill ended first or timeout_s passed."""
    assert ctx.api is not None
    api = ctx.api
    baseline = history_puts(ctx.settings)
    ended = False
    checked_at = time.time()

    def publishing() -> bool:
        nonlocal ended, checked_at
        if history_puts(ctx.settings) > baseline:
            return True
        if time.time() - checked_at >= 5:  # the backfill's status, now and then
            checked_at = time.time()
            with contextlib.suppress(DagsterApiError):
                ended = api.backfill_progress(ctx.backfill_id).done
        return ended

    return wait_until(publishing, timeout_s=timeout_s, interval_s=0.5) and not ended


def _during_backfill(ctx: FaultContext) -> BackfillFaultContext:
    # The faults have the signature of every drill's; run_backfill_drill hands them its own context.
    if not isinstance(ctx, BackfillFaultContext):
        raise TypeError("a drill during a backfill runs through run_backfill_drill")
    return ctx


def _hold(ctx: BackfillFaultContext, outage_s: float, service: str) -> None:
    time.sleep(min(10.0, outage_s))
    ctx.observe()
    time.sleep(max(0.0, outage_s - 10.0))
    ctx.restart(service)


def worker_kill_during_backfill(fault: FaultContext, outage_s: float) -> None:
    """kill -9 spark-worker-1's process group (the worker and its executors, of the Spark Connect server's
    application and of the stream's) once the run publishes rollups: the executor dies with puts of its
    tasks half sent, and Spark runs those tasks again on the other worker."""
    ctx = _during_backfill(fault)
    published = wait_for_publishing(ctx)
    ctx.note(f"history puts under way: {published}; step in progress: {ctx.step_in_progress()}")
    ctx.kill("spark-worker-1")
    _hold(ctx, outage_s, "spark-worker-1")


def history_tsdb_kill_during_backfill(fault: FaultContext, outage_s: float) -> None:
    """kill -9 the history VictoriaMetrics once the run publishes rollups to it."""
    ctx = _during_backfill(fault)
    published = wait_for_publishing(ctx)
    ctx.note(f"history puts under way: {published}; step in progress: {ctx.step_in_progress()}")
    ctx.kill("vm-history")
    _hold(ctx, outage_s, "vm-history")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def dagster_daemon_pid(settings: Settings) -> int | None:
    """The `dagster-daemon run` process under the stack's `dagster dev`."""
    leader = manager.process_named(settings, "dagster").pid()
    if leader is None:
        return None
    for child in _children(leader):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"dagster._daemon" in command and b"run" in command:
                return child
    return None


def daemon_kill_during_backfill(fault: FaultContext, outage_s: float) -> None:
    """kill -9 the Dagster daemon (only it: the webserver, the code server and the run go on) while a run of
    the backfill is in a step; `dagster dev` notices and stops the rest; `rtdp stack up` starts it again."""
    ctx = _during_backfill(fault)
    step = wait_until(lambda: ctx.step_in_progress() is not None, timeout_s=1200, interval_s=1)
    daemon = dagster_daemon_pid(ctx.settings)
    ctx.note(f"run in a step: {step} ({ctx.step_in_progress()}); daemon pid {daemon}")
    if daemon is None:
        raise RuntimeError("no dagster-daemon process found under the dagster service")
    ctx.fault_at = time.time()
    os.kill(daemon, signal.SIGKILL)
    ctx.note(f"kill -9 dagster-daemon (pid {daemon})")
    gone = wait_until(lambda: manager.process_named(ctx.settings, "dagster").pid() is None, timeout_s=60)
    ctx.note(f"`dagster dev` {'exited' if gone else 'still running'} {time.time() - ctx.fault_at:.0f} s after the kill")
    time.sleep(min(10.0, outage_s))
    ctx.observe()
    time.sleep(max(0.0, outage_s - 10.0))
    # `rtdp stack up` refuses to start Dagster while the old webserver still holds its port.
    host, port = ctx.settings.stack.bind_host, ctx.settings.dagster.webserver_port
    free = wait_until(lambda: not port_in_use(host, port), timeout_s=120, interval_s=1)
    ctx.note(f"webserver port {'free' if free else 'still in use'} {time.time() - ctx.fault_at:.0f} s after the kill")
    ctx.restart("dagster")


# --- reconciling the backfilled days ------------------------------------------------------------------


def days_of_range(first: str, last: str) -> list[dt.date]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def _ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)


def calendar_bucket_start(ts_ms: pd.Series, level: str) -> pd.Series:
    """Bucket starts (ms) of ISO weeks (Monday), calendar months or years, computed by pandas' periods."""
    freq = {"1w": "W-SUN", "1mo": "M", "1y": "Y"}[level]
    times = pd.to_datetime(ts_ms, unit="ms", utc=True).dt.tz_localize(None)
    starts = times.dt.to_period(freq).dt.start_time
    return (starts - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)


def part_of(level: str, bucket_start_ms: pd.Series) -> pd.Series:
    """The ``part`` tag a bucket is published under: its day (1m, 1h), month (1d, 1mo), ISO week (1w) or
    year (1y), as the partition keys are written."""
    day = pd.to_datetime(bucket_start_ms, unit="ms", utc=True)
    if level in ("1m", "1h"):
        return day.dt.strftime("%Y-%m-%d")
    if level in ("1d", "1mo"):
        return day.dt.strftime("%Y-%m-01")
    if level == "1w":
        return day.dt.strftime("%Y-%m-%d")  # the bucket starts on its Monday, the week's key
    return day.dt.strftime("%Y")


def truth_rollup(points: pd.DataFrame, level: str) -> pd.DataFrame:
    """Every aggregate of a level over raw points (metric, host, ts, value), in pandas."""
    fixed = {"1m": 60_000, "1h": 3_600_000, "1d": DAY_MS}
    ts = pd.Series(points["ts"])
    bucket = ts // fixed[level] * fixed[level] if level in fixed else calendar_bucket_start(ts, level)
    ordered = points.assign(bucket_start=bucket).sort_values("ts")
    grouped = ordered.groupby(["metric", "host", "bucket_start"])["value"]
    return grouped.agg(["count", "sum", "min", "max", "first", "last"]).reset_index()


def expected_history(points: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """The history TSDB points the rollups of these points publish: one per series, bucket and aggregate,
    with its level and part."""
    columns = [*HISTORY_KEY, "value"]
    frames = []
    for level in levels:
        rollup = truth_rollup(points, level)
        long = rollup.melt(id_vars=["metric", "host", "bucket_start"], var_name="agg", value_name="value")
        part = part_of(level, pd.Series(long["bucket_start"]))
        frames.append(pd.DataFrame(long.assign(rollup=level, part=part).rename(columns={"bucket_start": "ts"})))
    if not frames:
        return pd.DataFrame(columns=pd.Index(columns))
    return pd.DataFrame(pd.concat(frames, ignore_index=True)[columns])


def compare_history(expected: pd.DataFrame, actual: pd.DataFrame) -> dict[str, int]:
    """Published points against the history TSDB's samples as reads get them: missing, doubled (a sample
    read more than once), extra (no such point published) and different values."""
    counts = pd.DataFrame(actual.groupby(HISTORY_KEY).size().to_frame("samples").reset_index())
    merged = expected.merge(
        actual.drop_duplicates(HISTORY_KEY).merge(counts, on=HISTORY_KEY),
        on=HISTORY_KEY,
        how="outer",
        suffixes=("", "_tsdb"),
        indicator=True,
    )
    both = merged[merged["_merge"] == "both"]
    return {
        "expected": len(expected),
        "samples": len(actual),
        "missing": int((merged["_merge"] == "left_only").sum()),
        "extra": int((merged["_merge"] == "right_only").sum()),
        "doubled": int((both["samples"] - 1).sum()),
        "different": int((~_near(both["value"], both["value_tsdb"], 1e-9)).sum()),
    }


def history_truth(settings: Settings, platform: BackfillDrillPlatform, days: list[dt.date]) -> pd.DataFrame:
    """The history source's points of these days: (start, end] shifted by 1 ms makes [midnight, midnight)."""
    start, end = _ms(days[0]), _ms(days[-1] + dt.timedelta(days=1))
    return truth_frame(settings, start - 1, end - 1, platform.history_source_name)


def history_tsdb_points(settings: Settings, metrics: list[str], stored: bool = False) -> pd.DataFrame:
    """The history TSDB's samples of these metrics as reads (the router, Grafana) get them, or with
    ``stored`` as it holds them, duplicates its deduplication hides included."""
    from rtdp_dagster.tsdb.query import export_series, force_flush

    url = settings.tsdb.history.url
    force_flush(url)
    rows = []
    for metric in metrics:
        for series in export_series(url, metric, timeout_s=120, stored=stored):
            tags = series["tags"]
            key = (metric, tags.get("host", ""), tags.get("rollup", ""), tags.get("agg", ""), tags.get("part", ""))
            rows.extend((*key, int(ts), float(value)) for ts, value in series["points"])
    return pd.DataFrame(rows, columns=pd.Index([*HISTORY_KEY, "value"]))


def stored_again(stored: pd.DataFrame) -> int:
    """Samples the TSDB holds more than once (a point re-sent by a retried task) that reads do not get."""
    return int(len(stored) - len(stored.drop_duplicates(HISTORY_KEY)))


def reconcile_history_tsdb(settings: Settings, truth: pd.DataFrame) -> dict[str, int]:
    """The history TSDB as reads get it against the points published (``doubled`` counts a sample read
    twice, which deduplication turned off would show), and ``stored_again``: what it absorbed."""
    metrics = sorted(truth["metric"].unique())
    figures = compare_history(
        expected_history(truth, list(settings.batch.history_levels)), history_tsdb_points(settings, metrics)
    )
    figures["stored_again"] = stored_again(history_tsdb_points(settings, metrics, stored=True))
    return figures


def reconcile_backfilled_days(spark, settings: Settings, truth: pd.DataFrame, days: list[dt.date]) -> dict:
    """Silver and every rollup level of the history source's series against pandas over its truth."""
    from pyspark.sql import functions as F

    from rtdp_dagster.master_data.table import read_table

    metrics = sorted(truth["metric"].unique())
    start, end = _ms(days[0]), _ms(days[-1] + dt.timedelta(days=1))
    identity = ["metric", "host", "ts"]
    silver = read_table(spark, settings.delta.table_path("silver"))
    assert silver is not None
    actual = (
        silver.where(F.col("metric").isin(metrics) & (F.col("ums_ts_") >= start) & (F.col("ums_ts_") < end))
        .select("metric", F.col("tags").getItem("host").alias("host"), F.col("ums_ts_").alias("ts"), "value")
        .toPandas()
    )
    merged = truth.merge(actual, on=identity, how="outer", suffixes=("", "_silver"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    figures: dict[str, Any] = {
        "days": [day.isoformat() for day in days],
        "produced": len(truth),
        "silver_points": len(actual),
        "lost": int((merged["_merge"] == "left_only").sum()),
        "extra_in_silver": int((merged["_merge"] == "right_only").sum()),
        "silver_value_differs": int((~_near(both["value"], both["value_silver"], 1e-9)).sum()),
        "duplicated_in_silver": int(len(actual) - actual.drop_duplicates(identity).shape[0]),
    }
    rollups = {}
    for level in ("1m", "1h", "1d", "1w", "1mo", "1y"):
        table = read_table(spark, settings.delta.table_path(f"rollup_{level}"))
        columns = ["metric", "host", "bucket_start", "count", "sum", "min", "max"]
        if table is None:
            found = pd.DataFrame(columns=pd.Index(columns))
        else:
            rows = table.where(F.col("metric").isin(metrics))
            if level in ("1m", "1h", "1d"):  # the day levels also hold today's (written by `reconcile`)
                rows = rows.where((F.col("bucket_start") >= start) & (F.col("bucket_start") < end))
            found = rows.select(
                "metric",
                F.col("tags").getItem("host").alias("host"),
                "bucket_start",
                "count",
                F.col("sum").cast("double").alias("sum"),
                "min",
                "max",
            ).toPandas()
        expected = (
            pandas_rollup(truth, {"1m": 60_000, "1h": 3_600_000, "1d": DAY_MS}[level])
            if level in ("1m", "1h", "1d")
            else pd.DataFrame(truth_rollup(truth, level)[columns])
        )
        rollups[level] = compare_rollups(expected, found)
    figures["rollups"] = rollups
    return figures


# --- the run ------------------------------------------------------------------------------------------


def backfill_title(drill: str, launch: int) -> str:
    """The backfill's title in the UI: Dagster takes at most 100 characters and none of % * \"."""
    return re.sub(r'[%*"]', "", f"drill {drill}: launch {launch}")[:100]


def history_exact(figures: dict[str, int]) -> bool:
    return all(figures[key] == 0 for key in ("missing", "extra", "doubled", "different"))


def run_backfill_drill(
    cluster: Cluster,
    spark,
    drill: Drill,
    *,
    rate: float,
    warm_s: float,
    after_s: float,
    outage_s: float | None = None,
) -> DrillResult:
    """One drill during a backfill, from a fresh topic to its reconciled figures (see the module docstring)."""
    platform = BackfillDrillPlatform(cluster, drill.name, rate, cluster.run_dir / "drills" / drill.name)
    if platform.folder.exists():
        shutil.rmtree(platform.folder)
    outage = drill.outage_s if outage_s is None else outage_s
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    log(f"{drill.name}: {drill.what} (load {rate:,.0f} points/s)")
    phases: dict[str, float] = {}
    began = time.time()
    settings = platform.start()
    phases["start_s"] = round(time.time() - began, 1)
    api = BackfillApi(dagster_url(settings))
    ctx = BackfillFaultContext(platform, settings, api=api)
    attempts: list[BackfillAttempt] = []
    backfill: dict[str, Any] = {}
    history: dict[str, Any] = {}
    days: list[dt.date] = []
    error = None
    load_started = time.time()
    with Watcher(platform) as watcher:
        try:
            from rtdp_dagster.demo.landing import wait_for_history
            from rtdp_dagster.demo.run import backfill_ranges

            began = time.time()
            records = wait_for_history(settings, log, timeout_s=1800, since_ms=int(time.time() * 1000))
            phases["history_landed_s"] = round(time.time() - began, 1)
            backfill["history_records_on_kafka"] = records
            time.sleep(warm_s)
            now = dt.datetime.now(dt.UTC)
            ranges = backfill_ranges(
                HISTORY_DAYS, now, settings.quality.freshness.silver_deadline_cron, settings.batch.start_date
            )
            backfill["ranges"] = ranges
            days = days_of_range(*ranges["silver"])

            def launch(why: str) -> BackfillAttempt:
                title = backfill_title(drill.name, len(attempts) + 1)
                backfill_id = api.launch_asset_backfill(ranges, title=title)
                attempt = BackfillAttempt(backfill_id, why, time.time())
                attempts.append(attempt)
                ctx.backfill_id = backfill_id
                log(f"{drill.name}: backfill {backfill_id} ({why}): {ranges}")
                return attempt

            attempt = launch("the backfill of the history")
            drill.fault(ctx, outage)
            follow_backfill(api, attempt)
            for _ in range(RELAUNCHES):
                if attempt.complete:
                    break
                if attempt.ended_at is None:
                    clear_stuck_backfill(api, attempt)
                attempt = launch(f"re-launch after {attempt.status} (the documented remedy: re-run the range)")
                follow_backfill(api, attempt)
            backfill["complete"] = attempt.complete
            backfill["complete_after_fault_s"] = (
                round(attempt.ended_at - ctx.fault_at, 1) if attempt.complete and attempt.ended_at else None
            )
            backfill["relaunched"] = len(attempts) > 1

            log(f"{drill.name}: the history TSDB against the published rollups")
            truth = history_truth(settings, platform, days)
            history["after_backfill"] = reconcile_history_tsdb(settings, truth)
            if not history_exact(history["after_backfill"]):
                # The platform's repair of the history TSDB: publishing a part again replaces it whole.
                attempt = launch("repair of the history TSDB: the same backfill again")
                follow_backfill(api, attempt)
                history["after_repair"] = reconcile_history_tsdb(settings, truth)
            time.sleep(after_s)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log(f"{drill.name}: {error}")
        finally:
            manager.up(settings, log=lambda line: None)  # whatever the drill left stopped
        operator_after = operator_view(settings, api, ctx.backfill_id or None)
        drained, repair_due = wind_down(platform, spark, phases)
        timeline = timeline_rows(watcher, load_started)
        # Counted from the part's return: `stack status` may show a killed daemon's `dagster dev` healthy for
        # the seconds it takes to notice and exit, which is not the platform being healthy again.
        recovered_at = watcher.healthy_again_at(max(ctx.fault_at, ctx.restored_at - 1)) if ctx.fault_at else None
    fault_rows = [
        {
            "drill": drill.name,
            "what": drill.what,
            "fault_after_s": round(ctx.fault_at - load_started, 1) if ctx.fault_at else None,
            "outage_s": round(ctx.restored_at - ctx.fault_at, 1) if ctx.restored_at else None,
            "recovery_s": None if recovered_at is None else round(recovered_at - ctx.fault_at, 1),
            "notes": ctx.notes,
            "stack_status_during_fault": ctx.status_during,
            "dagster_during_fault": ctx.dagster_during,
        }
    ]
    logs = settings.run_dir / "logs"
    operator = {
        "phases": phases,
        "stream_log": _log_excerpt(logs / "stream.log"),
        "ingest_log": _log_excerpt(logs / "ingest.log"),
        "dagster_log": _log_excerpt(logs / "dagster.log"),
        "dagster_failures": _log_excerpt(logs / "dagster.log", pattern=DAGSTER_FAILURES),
        "after_backfill": operator_after,
        "drained": drained,
        "repair_due": repair_due,
    }
    platform.stop()
    figures: dict[str, Any] = {}
    try:
        began = time.time()
        if days:  # first: as the backfill left the tables (the load's reconciliation writes today's days)
            log(f"{drill.name}: reconciling the backfilled days {[day.isoformat() for day in days]}")
            truth = history_truth(settings, platform, days)
            span = collected_span(settings, platform.history_source_name)
            figures["backfilled"] = {
                "history_span_ms": list(span[:2]),
                "history_covers_days": span[0] <= _ms(days[0]),
                **reconcile_backfilled_days(spark, settings, truth, days),
            }
        log(f"{drill.name}: reconciling the load source")
        figures.update(reconcile(spark, platform))
        phases["reconcile_s"] = round(time.time() - began, 1)
    except Exception as exc:
        error = (error + "; " if error else "") + f"reconcile: {type(exc).__name__}: {exc}"
        log(f"{drill.name}: {error}")
    figures["backfill"] = {**backfill, "attempts": [attempt.to_json() for attempt in attempts]}
    figures["history_tsdb"] = history
    result = DrillResult(
        drill=drill.name,
        what=drill.what,
        rate_target=rate,
        started_at=started,
        faults=fault_rows,
        operator_saw=operator,
        figures=figures,
        timeline=timeline,
        error=error,
    )
    log(f"{drill.name}: {summary_line(result)}; {backfill_line(result)}")
    return result


def backfill_line(result: DrillResult) -> str:
    f = result.figures
    days, backfill, history = f.get("backfilled", {}), f.get("backfill", {}), f.get("history_tsdb", {})
    after = history.get("after_backfill", {})
    repaired = history.get("after_repair")
    return (
        f"backfill complete {backfill.get('complete')} after {len(backfill.get('attempts', []))} launch(es); "
        f"backfilled days: produced {days.get('produced', '-')}, silver {days.get('silver_points', '-')}, "
        f"lost {days.get('lost', '-')}, duplicated {days.get('duplicated_in_silver', '-')}; history TSDB "
        f"missing {after.get('missing', '-')}, doubled {after.get('doubled', '-')}, "
        f"re-sent and read once {after.get('stored_again', '-')}"
        + (f" (after repair: missing {repaired['missing']}, doubled {repaired['doubled']})" if repaired else "")
    )


def _backfill_drill(name: str, what: str, fault: Callable[[FaultContext, float], None], outage_s: float) -> Drill:
    return Drill(name, what, fault, outage_s, runner=run_backfill_drill)


BACKFILL_DRILLS: dict[str, Drill] = {
    drill.name: drill
    for drill in (
        _backfill_drill(
            "backfill_worker_kill",
            "kill -9 a Spark worker (and its executors) while a backfill publishes rollups, restart it 30 s later",
            worker_kill_during_backfill,
            30,
        ),
        _backfill_drill(
            "backfill_history_tsdb_kill",
            "kill -9 the history VictoriaMetrics while a backfill publishes rollups to it, restart it 30 s later",
            history_tsdb_kill_during_backfill,
            30,
        ),
        _backfill_drill(
            "backfill_daemon_kill",
            "kill -9 the Dagster daemon in the middle of a backfill run, `rtdp stack up` 20 s later",
            daemon_kill_during_backfill,
            20,
        ),
    )
}
# Registered where every drill is looked up; `python -m bench` and the drills scenario import this module.
DRILLS.update(BACKFILL_DRILLS)
