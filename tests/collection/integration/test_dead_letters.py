"""Every malformed-row kind lands in the dead-letter topic with its reason; one bad row never stops a window."""

import threading

from rtdp_dagster.collection.ingest import SourceRunner
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.collection.state import CollectionState, now_ms
from rtdp_dagster.config import Settings
from rtdp_dagster.config.sources import MalformedRatesConfig, SyntheticSourceConfig
from rtdp_dagster.envelope import validation as v

from .conftest import read_topic

REASON_OF_KIND = {
    "missing_timestamp": v.MISSING_TIMESTAMP,
    "non_numeric_value": v.NON_NUMERIC_VALUE,
    "nan_value": v.NON_FINITE_VALUE,
    "inf_value": v.NON_FINITE_VALUE,
    "future_timestamp": v.TIMESTAMP_IN_FUTURE,
    "invalid_metric": v.INVALID_METRIC_NAME,
    "oversize_tag": v.OVERSIZE_TAGS,
}


def test_each_malformed_kind_is_dead_lettered_with_its_reason(isolated: Settings) -> None:
    config = SyntheticSourceConfig(
        name="faulty",
        namespace="synthetic.local.fleet.metrics.v1.0.0",
        cadence_s=1.0,
        sites=2,
        hosts_per_site=10,
        malformed=MalformedRatesConfig(**{kind: 0.02 for kind in REASON_OF_KIND}),
    )
    t0 = (now_ms() // 300_000 - 12) * 300_000  # an hour ago: inside every retention, whatever today is
    clock = lambda: t0 + 600_000  # noqa: E731 - everything of the window is ready
    state = CollectionState(isolated.collection.state_url)
    runner = SourceRunner(
        build_source(config, isolated.nab_data_dir),
        config.namespace,
        300.0,
        300.0,
        isolated,
        state,
        threading.Event(),
        clock,
    )
    state.plan_windows("faulty", 1, t0 + 300_000, 300_000, 300_000, first_start_ms=t0)
    assert runner.work_once()
    runner.close()

    dead = read_topic(isolated, isolated.kafka.deadletter_topic)
    points = read_topic(isolated, isolated.kafka.points_topic)
    (log,) = state.log_rows(source="faulty")
    assert log.rows_dead_lettered == len(dead) > 0
    assert log.rows_valid == len(points) and log.rows_read == len(dead) + len(points)
    assert {record["reason"] for record in dead} == set(REASON_OF_KIND.values())
    for record in dead:
        assert record["source"] == "faulty" and record["wave"] == 1
        assert (record["window_start"], record["window_end"]) == (t0, t0 + 300_000)
        assert record["raw"] is not None and record["detail"]
    state.dispose()


def test_window_figures_reach_the_realtime_tsdb(stack: Settings) -> None:
    from rtdp_dagster.collection.metrics import tsdb_sink
    from rtdp_dagster.collection.state import LogRow
    from rtdp_dagster.tsdb.query import export_series, force_flush

    # A window that closed a minute ago: inside the realtime TSDB's retention whatever today is.
    end = (now_ms() // 10_000 - 6) * 10_000
    row = LogRow("metrics_test", 2, end - 10_000, end, 40, 38, 5, 2, 120, "ok", 1, 0)
    tsdb_sink(stack.tsdb.realtime)(row)
    force_flush(stack.tsdb.realtime.url)
    (series,) = export_series(stack.tsdb.realtime.url, "rtdp.collect.rows_new", {"source": "metrics_test"})
    assert series["tags"] == {"source": "metrics_test", "wave": "2"}
    assert [tuple(point) for point in series["points"]] == [(end, 5)]
