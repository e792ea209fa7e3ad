"""Speed-layer throughput as the issue defines it: the highest rate held for minutes with bounded lag.

A load generator (``bench.load_producer``, its own process) produces at a rate while ``rtdp stream``
runs; the lag is the points acknowledged by Kafka minus the points the stream has landed in bronze
(and read for the realtime TSDB), sampled every 2 s from its heartbeat.

1. warm-up at a low rate until the stream has landed points (its first batches compile code);
2. a ladder of rates, ``step_s`` each, each from no lag: the highest rate whose lag stays bounded
   is the candidate;
3. the candidate held for ``hold_s`` (5 min): it counts only if the lag stayed bounded there too;
   if not, the next lower rung is held instead;
4. the bare consume rate of the same topic in the same run: Spark reading and counting it in one
   batch job, as in the drain scenario.

Lag is bounded when its low points do not rise by more than 5 s worth of load from the first third
of a window to the last (over a 5-min hold: the stream kept at least ~97% of the pace) and it stays
under 15 s worth of points (bronze and the realtime TSDB are never more than 15 s behind). The
heartbeat is refreshed every 5 s and a micro-batch takes seconds, so the lag saws between those
low points.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import Record
from bench.stream_stack import (
    LOAD_METRIC,
    SCENARIO,
    java_peak_mib,
    prepare,
    spark_read_rate,
    start_stream,
    stop_stream,
    stream_totals,
)
from rtdp_dagster.config import Settings
from rtdp_dagster.stack.process import wait_until

# Envelope v2 (UMS batches): from below where v1 records ended (25-40k points/s), so a stream slower than
# that still gets a figure, up to twice the goal.
RATES = (10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000)
WARM_UP_RATE = 5_000
SAMPLE_EVERY_S = 2.0
SETTLE_S = 15.0  # after a rate change, before the lag is judged
MAX_GROWTH_S = 5.0
MAX_LAG_S = 15.0


@dataclass
class Window:
    rate: int
    seconds: float
    lags: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, points)
    produced: int = 0

    @property
    def judged(self) -> list[tuple[float, int]]:
        """The samples after the rate change has settled."""
        return [(t, lag) for t, lag in self.lags if t >= SETTLE_S] or self.lags

    @property
    def growth_s(self) -> float:
        """How much further behind (in seconds of load) the stream was at the end than at the start.

        By the lag's lower envelope: its least value in the last third of the window against the
        first third. The lag saws by a micro-batch and a heartbeat period; its low points do not
        rise unless the stream falls behind.
        """
        judged = self.judged
        third = max(1, len(judged) // 3)
        first, last = min(lag for _, lag in judged[:third]), min(lag for _, lag in judged[-third:])
        return (last - first) / self.rate if self.rate else 0.0

    @property
    def max_lag(self) -> int:
        return max((lag for _, lag in self.judged), default=0)

    @property
    def achieved_rate(self) -> float:
        return self.produced / self.seconds

    @property
    def bounded(self) -> bool:
        # A producer that could not keep the rate would make any stream look fast.
        return (
            self.achieved_rate >= 0.97 * self.rate
            and self.growth_s <= MAX_GROWTH_S
            and self.max_lag <= MAX_LAG_S * self.rate
        )

    def describe(self) -> str:
        return (
            f"{self.rate:,} points/s for {self.seconds:.0f} s (produced {self.achieved_rate:,.0f}/s): "
            f"lag grew by {self.growth_s:.1f} s of load, max lag {self.max_lag:,} "
            f"-> {'bounded' if self.bounded else 'NOT bounded'}"
        )


class Load:
    """The load generator process and what it reports."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.rate_file, self.progress_file = folder / "load-rate", folder / "load-progress.json"
        self.set_rate(0)
        log = (folder / "load-producer.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.load_producer",
                "--bootstrap",
                settings.kafka.bootstrap_servers,
                "--topic",
                settings.kafka.points_topic,
                "--metric",
                LOAD_METRIC,
                "--rate-file",
                str(self.rate_file),
                "--progress-file",
                str(self.progress_file),
                "--compression",
                settings.kafka.compression_type or "none",
                "--envelope-version",
                "2",
                "--max-points",
                str(settings.collection.ums_batch.max_points),
                "--max-bytes",
                str(settings.collection.ums_batch.max_bytes),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        assert wait_until(lambda: self.progress() is not None or self.process.poll() is not None, timeout_s=60)
        self._check_alive()

    def set_rate(self, rate: int) -> None:
        self.rate_file.with_suffix(".tmp").write_text(str(rate))
        self.rate_file.with_suffix(".tmp").replace(self.rate_file)

    def progress(self) -> dict | None:
        try:
            return json.loads(self.progress_file.read_text())
        except (OSError, ValueError):
            return None

    def acked(self) -> int:
        self._check_alive()
        return self._delivered().get("acked", 0)

    def _delivered(self) -> dict:
        """The last progress, which must not report a point Kafka refused (the lag would be wrong)."""
        state = self.progress() or {}
        if state.get("errors"):
            raise RuntimeError(f"the load generator had {state['errors']} delivery errors: {state['first_error']}")
        return state

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the load generator exited with {self.process.returncode}; see its log")

    def stop(self) -> tuple[int, int]:
        """Stop producing; returns how many records (each a UMS batch of points) and points Kafka
        acknowledged in all."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=90)
        delivered = self._delivered()
        return delivered["records_acked"], delivered.get("acked", 0)


def _landed(config_file: Path) -> int:
    totals = stream_totals(config_file)
    return min(totals.get("bronze.bronze_rows", 0), totals.get("realtime.num_input_rows", 0))


def _warm(load: Load, config_file: Path) -> bool:
    """The stream's first batches with data (compiling code) are behind it and it has caught up."""
    landed = _landed(config_file)
    return landed >= WARM_UP_RATE * 20 and load.acked() - landed <= WARM_UP_RATE * 10


def _catch_up(load: Load, config_file: Path) -> None:
    """Pause the load until the stream has landed everything: each window starts from no lag."""
    load.set_rate(0)
    assert wait_until(lambda: load.acked() - _landed(config_file) <= 0, timeout_s=900, interval_s=1.0), (
        "the stream did not catch up with the load"
    )


def _run_window(load: Load, config_file: Path, rate: int, seconds: float, watch) -> Window:
    load.set_rate(rate)
    window = Window(rate, seconds)
    began, acked_before = time.perf_counter(), load.acked()
    while (elapsed := time.perf_counter() - began) < seconds:
        window.lags.append((elapsed, max(0, load.acked() - _landed(config_file))))
        watch()
        time.sleep(SAMPLE_EVERY_S)
    window.produced = load.acked() - acked_before
    window.seconds = time.perf_counter() - began
    return window


def sustained(settings: Settings, hold_s: float = 300.0, step_s: float = 60.0, log=print) -> list[Record]:
    bench, config_file = prepare(settings, "sustained", max_offsets_per_trigger=settings.stream.max_offsets_per_trigger)
    load = Load(bench, config_file.parent)
    stopped, peak = False, 0.0
    stream = start_stream(config_file)

    def watch() -> None:
        nonlocal peak
        peak = max(peak, java_peak_mib(stream.pid))
        if stream.poll() is not None:
            raise RuntimeError(f"rtdp stream exited with {stream.returncode} during the run")

    try:
        log(f"stream sustained rate: warming up at {WARM_UP_RATE:,} points/s ...")
        load.set_rate(WARM_UP_RATE)
        assert wait_until(lambda: _warm(load, config_file), timeout_s=600, interval_s=1.0), (
            "the stream did not catch up with the warm-up load"
        )
        ladder: list[Window] = []
        for rate in RATES:
            _catch_up(load, config_file)
            window = _run_window(load, config_file, rate, step_s, watch)
            ladder.append(window)
            log(f"  ladder: {window.describe()}")
            if not window.bounded:
                break
        candidates = [window.rate for window in ladder if window.bounded][::-1][:2]
        holds: list[Window] = []
        producer_cores = 0.0
        for rate in candidates:
            _catch_up(load, config_file)
            cpu_before = load.cpu_s()
            window = _run_window(load, config_file, rate, hold_s, watch)
            producer_cores = (load.cpu_s() - cpu_before) / window.seconds
            holds.append(window)
            log(f"  hold: {window.describe()}; the load generator used {producer_cores:.2f} cores")
            if window.bounded:
                break
        (total, total_points), stopped = load.stop(), True
    finally:
        if not stopped:
            load.process.kill()
        stop_stream(stream)
    held = next((window for window in holds if window.bounded), None)

    log("baseline: Spark reads and counts the same topic in one batch job ...")
    counted, record_rate = spark_read_rate(settings, bench)
    assert counted >= total, f"Kafka holds {counted:,} records, the load generator had {total:,} records acknowledged"
    bare_rate = record_rate * total_points / max(total, 1)  # in points, as the stream's rates

    rate = held.rate if held else 0
    highest_step = max((window.rate for window in ladder if window.bounded), default=0)
    log(
        f"stream sustained {rate:,} points/s for {hold_s:.0f} s with bounded lag; "
        f"Spark batch read of the same topic: {bare_rate:,.0f} points/s"
    )
    return [
        Record(SCENARIO, "sustained_points_per_s", rate, "points/s", baseline=round(bare_rate)),
        Record(SCENARIO, "sustained_max_lag", held.max_lag if held else 0, "points"),
        Record(SCENARIO, "sustained_max_lag_s", round(held.max_lag / held.rate, 1) if held else 0, "s of load"),
        Record(SCENARIO, "sustained_ladder_highest_bounded", highest_step, "points/s"),
        Record(SCENARIO, "sustained_load_generator_cores", round(producer_cores, 2), "cores"),
        Record(SCENARIO, "driver_peak_rss_sustained", round(peak), "MiB"),
    ]
