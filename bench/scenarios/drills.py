"""Fault drills (`python -m bench --only drills [--drill NAME ...]`): each drill of ``bench.drills`` under
the collectors' own load on a cluster-profile stack of its own, reconciled to the point.

The cluster runs in ``$DRILLS_DIR`` (default: a new /tmp/drills-* folder) on the ports from
``$DRILLS_PORT_BASE`` on (default: free ports); it is stopped and removed at the end. Besides the
benchmark records, every drill's full result (figures, timeline, what the operator saw) goes to
``bench/results/drills.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

import bench.backfill_drills  # noqa: F401  (adds the drills during a Dagster backfill to DRILLS)
from bench.drills import DRILLS, Cluster, DrillResult, cluster_env, log, run_drill, stop_leftovers
from bench.results import RESULTS_DIR, Record, plot
from rtdp_dagster.config import Settings

# points/s: 4 sites x 360 hosts x 7 metrics at a 1 s cadence ($DRILLS_RATE for a smaller load)
RATE = float(os.environ.get("DRILLS_RATE", 10_080))
DRILLS_JSON = RESULTS_DIR / "drills.json"


def _ports() -> list[int]:
    base = os.environ.get("DRILLS_PORT_BASE")
    if base:
        return list(range(int(base), int(base) + 40))
    sockets = [socket.socket() for _ in range(40)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def records_of(result: DrillResult) -> list[Record]:
    f, name = result.figures, result.drill
    if "produced" not in f:  # not reconciled (a drill during a backfill may still have its backfill's figures)
        return backfill_records(result)
    produced = float(f["produced"])
    return [
        *backfill_records(result),
        Record("drills", f"{name}: points in bronze (produced)", float(f["bronze_points"]), "points", produced),
        Record("drills", f"{name}: points in silver (produced)", float(f["silver_points"]), "points", produced),
        Record("drills", f"{name}: points lost", float(f["lost"]), "points"),
        Record("drills", f"{name}: points duplicated in silver", float(f["duplicated_in_silver"]), "points"),
        Record(
            "drills",
            f"{name}: realtime points missing after repair",
            float(f["realtime_missing_after_repair"]),
            "points",
        ),
        Record(
            "drills",
            f"{name}: seconds until healthy again",
            float(result.recovery_s if result.recovery_s is not None else -1),
            "s",
            samples=[float(s["committed"]) for s in result.timeline],
        ),
    ]


def backfill_records(result: DrillResult) -> list[Record]:
    """A drill during a backfill: its backfilled days against the truth, and the history TSDB as the backfill
    left it and after the platform's repair (none when it was exact)."""
    f, name = result.figures, result.drill
    days, history = f.get("backfilled"), f.get("history_tsdb") or {}
    records = []
    if days:
        silver, produced = float(days["silver_points"]), float(days["produced"])
        records += [
            Record("drills", f"{name}: backfilled points in silver (produced)", silver, "points", produced),
            Record("drills", f"{name}: backfilled points lost", float(days["lost"]), "points"),
            Record("drills", f"{name}: backfilled points duplicated", float(days["duplicated_in_silver"]), "points"),
        ]
    for when in ("after_backfill", "after_repair"):
        for what in ("missing", "doubled"):
            if when in history:
                label = f"{name}: history TSDB points {what} {when.replace('_', ' ')}"
                records.append(Record("drills", label, float(history[when][what]), "points"))
    return records


def _save(results: list[DrillResult]) -> None:
    previous = json.loads(DRILLS_JSON.read_text()) if DRILLS_JSON.exists() else []
    ran = {result.drill for result in results}
    kept = [row for row in previous if row["drill"] not in ran]
    DRILLS_JSON.write_text(json.dumps(kept + [r.to_json() for r in results], indent=1) + "\n")


def run(
    settings: Settings,
    seconds: float = 60.0,
    log_line=log,
    only: list[str] | None = None,
    rate: float = RATE,
) -> list[Record]:
    del settings  # the drills run on a cluster of their own, not on the local stack
    names = only or list(DRILLS)
    run_dir = Path(os.environ.get("DRILLS_DIR") or tempfile.mkdtemp(prefix="drills-", dir="/tmp"))
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o711)  # PostgreSQL's system user must reach its data folder when this runs as root
    cluster = Cluster(run_dir, cluster_env(run_dir, iter(_ports()), secrets.token_hex(12), driver_memory="3g"))
    results: list[DrillResult] = []
    started = time.time()
    os.environ.update(cluster.env)
    try:
        log_line(f"drills: cluster in {run_dir}: {', '.join(names)}")
        base = cluster.up()
        from rtdp_dagster.spark.session import connect_separately

        spark = connect_separately(base)  # on the cluster, whatever session this process had before
        try:
            for name in names:
                try:
                    result = run_drill(cluster, spark, DRILLS[name], rate=rate, warm_s=20.0, after_s=seconds)
                except Exception as exc:  # recorded; the next drill runs on its own platform
                    log_line(f"drills: {name}: {type(exc).__name__}: {exc}")
                    stop_leftovers(cluster.settings())
                    continue
                results.append(result)
                _save(results)
                plot([record for done in results for record in records_of(done)], RESULTS_DIR)
        finally:
            spark.stop()
    finally:
        stop_leftovers(cluster.settings())
        cluster.down()
        if not os.environ.get("DRILLS_KEEP"):
            shutil.rmtree(run_dir, ignore_errors=True)
    log_line(f"drills: {len(results)} in {time.time() - started:.0f} s")
    return [record for result in results for record in records_of(result)]


def markdown_table(rows: list[dict]) -> str:
    """The README's drills table from ``drills.json`` rows."""
    lines = [
        "| drill | produced | in bronze | in silver | lost | duplicated in silver | realtime missing after repair "
        "| healthy again after | what the operator saw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        f = row["figures"]
        if "produced" not in f:
            lines.append(f"| {row['drill']} | - | - | - | - | - | - | - | not reconciled: {row['error']} |")
            continue
        states = [f"{s['service']} {s['state']}" for fault in row["faults"] for s in fault["stack_status_during_fault"]]
        seen = f"`stack status`: {', '.join(states)}" if states else ""
        recovery = "-" if row["recovery_s"] is None else f"{row['recovery_s']:.0f} s"
        lines.append(
            f"| {row['drill']} | {f['produced']:,} | {f['bronze_points']:,} | {f['silver_points']:,} | {f['lost']:,} "
            f"| {f['duplicated_in_silver']:,} | {f['realtime_missing_after_repair']:,} | {recovery} | {seen or '-'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(json.loads(DRILLS_JSON.read_text())))
