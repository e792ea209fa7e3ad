"""The field case: a SQL source where 20% of rows become visible 30 s to 50 min late.

A simulated clock drives wave 1 (every window), wave 2 (every 5 minutes, 5 minutes behind) and
wave 3 (every 10 minutes, an hour behind) over real Kafka; afterwards every row is on Kafka and
the collection log accounts for each of them exactly once as "new".
"""

import random
import threading
from itertools import pairwise
from pathlib import Path

from pydantic import TypeAdapter

from rtdp_dagster.collection.ingest import SourceRunner
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.state import CollectionState, now_ms
from rtdp_dagster.collection.waves import run_catchup
from rtdp_dagster.config import Settings
from rtdp_dagster.config.sources import SourceConfig
from rtdp_dagster.envelope.keys import point_key

from .conftest import create_metrics_table, read_topic, sql_source_config

MINUTE = 60_000


class SimulatedClock:
    def __init__(self, start_ms: int) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


def test_late_rows_are_caught_by_waves_and_every_row_is_accounted(isolated: Settings, tmp_path: Path) -> None:
    rng = random.Random(7)
    t0 = (now_ms() // MINUTE - 180) * MINUTE  # three hours ago: the simulated clock stays in the past
    hosts = [f"web-{i:02d}" for i in range(20)]
    rows = []  # (visible_at, ts, host, value)
    for step in range(60):
        for index, host in enumerate(hosts):
            ts = t0 + step * 30_000 + index * 1_000  # hosts report at different moments of the window
            late = rng.random() < 0.2
            delay = rng.uniform(30_000, 50 * MINUTE) if late else rng.uniform(0, 5_000)
            rows.append((ts + int(delay), ts, host, round(rng.uniform(0, 100), 3)))
    rows.sort()
    insert = create_metrics_table(tmp_path / "source.db")
    config = TypeAdapter(SourceConfig).validate_python(sql_source_config(tmp_path / "source.db"))
    clock = SimulatedClock(t0)
    state = CollectionState(isolated.collection.state_url)
    runner = SourceRunner(
        build_source(config, isolated.nab_data_dir),
        config.namespace,
        config.waves.window_s,
        config.waves.max_window_s,
        isolated,
        state,
        threading.Event(),
        clock,
    )

    inserted = 0
    end = t0 + 30 * MINUTE + 65 * MINUTE
    for now in range(t0, end + 1, 30_000):
        clock.now = now
        visible = [row for row in rows[inserted:] if row[0] <= now]
        insert([(ts, host, value) for _, ts, host, value in visible])
        inserted += len(visible)
        runner.plan()
        while runner.work_once():
            pass
        if (now - t0) % (5 * MINUTE) == 0:
            run_catchup(isolated, build_source(config, isolated.nab_data_dir), config.namespace, config.waves, 2, clock)
        if (now - t0) % (10 * MINUTE) == 0:
            run_catchup(isolated, build_source(config, isolated.nab_data_dir), config.namespace, config.waves, 3, clock)
    runner.close()
    assert inserted == len(rows) == 1200

    on_kafka = {record["point_key"] for record in read_topic(isolated, isolated.kafka.points_topic)}
    expected = {point_key("sys.cpu.util", {"host": host}, ts) for _, ts, host, _ in rows}
    assert len(expected) == 1200
    assert expected <= on_kafka, f"{len(expected - on_kafka)} rows never reached Kafka"

    log = state.log_rows(source="field_sql")
    new_per_wave = {wave: sum(r.rows_new for r in log if r.wave == wave) for wave in (1, 2, 3)}
    assert sum(new_per_wave.values()) == 1200, new_per_wave
    assert new_per_wave[2] > 0 and new_per_wave[3] > 0, f"late rows must be caught by waves 2 and 3: {new_per_wave}"
    # Roughly the late share is left for the catch-up waves (20% of rows, minus those late by < 1 window).
    assert 150 <= new_per_wave[2] + new_per_wave[3] <= 400, new_per_wave
    for wave in (1, 2, 3):
        windows = [(r.window_start, r.window_end) for r in log if r.wave == wave]
        assert all(a[1] == b[0] for a, b in pairwise(windows)), f"wave {wave} has a gap or overlap"
        assert all(r.rows_dead_lettered == 0 for r in log if r.wave == wave)
    wave3 = [r for r in log if r.wave == 3]
    assert wave3[0].window_start <= t0 - 30_000 and wave3[-1].window_end >= t0 + 30 * MINUTE
    state.dispose()
