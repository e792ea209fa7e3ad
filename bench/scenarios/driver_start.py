"""A Spark driver's start, as the stream's: with the class archive `rtdp setup` makes, and without it.

Each sample is a fresh process that starts the stream's Spark session, checks the bronze and quarantine
tables as the stream does, and appends a first small batch to bronze: the time until that first write
is what a stream (re)start costs before it reads Kafka. The two kinds alternate, three of each; the
figure is the median with the archive, its baseline the median without, from the same run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.results import Record
from rtdp_dagster.config import Settings
from rtdp_dagster.stack.class_archive import ensure_archive
from rtdp_dagster.stack.spark_conf import classic_driver_env

SCENARIO = "driver_start"
RUNS = 3

_SAMPLE = """
import datetime, json, sys, time
began = time.monotonic()
from rtdp_dagster.config import Settings
from rtdp_dagster.streaming import session, tables
if sys.argv[3] == "without":
    session.with_driver_archive = lambda conf, settings: conf
settings = Settings.model_validate({"run_dir": sys.argv[1], "jars_dir": sys.argv[2]})
spark = session.stream_session(settings)
started = time.monotonic()
bronze = settings.delta.table_path(tables.BRONZE)
tables.ensure_bronze(spark, bronze)
tables.ensure_quarantine(spark, settings.delta.table_path(tables.QUARANTINE))
checked = time.monotonic()
names = [field.name for field in tables.BRONZE_SCHEMA.fields]
day = datetime.date.today()
rows = [{**dict.fromkeys(names), "metric": "m", "ums_ts_": i, "value": 1.0, "event_date": day} for i in range(1000)]
spark.createDataFrame(rows, tables.BRONZE_SCHEMA).write.format("delta").mode("append").save(bronze)
written = time.monotonic()
times = {"session_s": started - began, "tables_s": checked - started, "first_write_s": written - checked}
print(json.dumps({**times, "total_s": written - began}))
"""


def _sample(settings: Settings, kind: str) -> dict[str, float]:
    env = classic_driver_env(os.environ)
    with tempfile.TemporaryDirectory(prefix="rtdp-bench-driver-") as run_dir:
        command = [sys.executable, "-c", _SAMPLE, run_dir, str(settings.jars_dir), kind]
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"driver start ({kind} archive) failed: {done.stderr[-2000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        figures["process_s"] = time.monotonic() - began
    return figures


def run(settings: Settings, seconds: float = 60.0, log=print) -> list[Record]:
    del seconds  # a fixed number of starts, not a duration
    ensure_archive(settings, log)
    samples: dict[str, list[dict[str, float]]] = {"with": [], "without": []}
    for index in range(RUNS):
        for kind in ("without", "with"):
            sample = _sample(settings, kind)
            samples[kind].append(sample)
            log(f"{SCENARIO}: run {index + 1}, {kind} archive: " + ", ".join(f"{k} {v:.1f}" for k, v in sample.items()))
    records = []
    figures = {"total_s": "start to first bronze write", "session_s": "Spark session", "tables_s": "table checks"}
    for key, figure in figures.items():
        with_archive = [s[key] for s in samples["with"]]
        without = [s[key] for s in samples["without"]]
        records.append(
            Record(
                SCENARIO,
                f"{figure}, with the class archive (baseline: without)",
                round(statistics.median(with_archive), 2),
                "s",
                baseline=round(statistics.median(without), 2),
                samples=with_archive,
            )
        )
    return records
