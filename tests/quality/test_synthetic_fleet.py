"""The silver checks on a day of the platform's synthetic fleet, as the demo runs it: every fault the
platform repairs (late, duplicated, corrected, retracted, malformed points; a counter reset a day)
leaves every check green; a counter that really steps down, or a real hole in a series, fails its
check with the exact count."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from pathlib import Path

import pytest

from rtdp_dagster.batch.intervals import DAY_MS, ms_of_date
from rtdp_dagster.collection.sources.synthetic import SyntheticSource
from rtdp_dagster.config import Settings
from rtdp_dagster.config.sources import SyntheticSourceConfig
from rtdp_dagster.envelope.validation import PointValidator, Rejection
from rtdp_dagster.quality.evaluate import points_checks
from rtdp_dagster.quality.profiles import points_profile
from tests.batch.bronze_rows import Record

from .days import bronze_and_silver, by_check, failures

DAY = dt.date(2024, 5, 1)
START = ms_of_date(DAY)
CADENCE_MS = 60_000
NAMESPACE = "synthetic.local.fleet.metrics.v1.0.0"
COUNTER = "app.requests.count"
# The demo's fleet faults (workload.py), corrections ten times as often: each one a chance to break a counter.
FLEET = {
    "kind": "synthetic",
    "name": "synthetic_fleet",
    "namespace": NAMESPACE,
    "sites": 1,
    "hosts_per_site": 3,
    "cadence_s": CADENCE_MS / 1000,
    "lateness": {"jitter_s": 2.0, "late_share": 0.05, "late_min_s": 15.0, "late_max_s": 150.0},
    "duplicate_rate": 0.01,
    "correction_rate": 0.05,
    "retraction_rate": 0.002,
    "malformed": {"non_numeric_value": 0.001, "nan_value": 0.001, "invalid_metric": 0.001},
}


def fleet_records(settings: Settings) -> list[Record]:
    """The day as wave 1 publishes it once everything is visible; malformed rows are dead-lettered."""
    source = SyntheticSource(SyntheticSourceConfig.model_validate(FLEET))
    validator = PointValidator(settings.validation, settings.quality.metric_kinds)
    read_at = START + DAY_MS + 3_600_000
    records = []
    for offset, raw in enumerate(source.read_window(START - 1, START + DAY_MS - 1, read_at)):
        point = validator.to_envelope(
            raw, namespace=NAMESPACE, source="synthetic_fleet", wave=1, collected_at=read_at, ums_id=read_at
        )
        if isinstance(point, Rejection):
            continue
        value = None if point.ums_op_ == "d" else point.value
        records.append(
            Record(
                point.metric,
                point.tags,
                point.ums_ts_,
                value,
                point.ums_id_,
                point.ums_op_,
                offset=offset,
                source="synthetic_fleet",
                namespace=NAMESPACE,
            )
        )
    return records


@pytest.fixture(scope="module")
def fleet(stack: Settings) -> list[Record]:
    return fleet_records(stack)


def _silver_checks(spark, settings: Settings, records: list[Record]) -> dict:
    tables = bronze_and_silver(spark, records, DAY, Path(settings.delta.root) / f"fleet-{uuid.uuid4().hex[:8]}")
    outcomes = points_checks(tables["silver"], "silver", DAY, settings, f"test-{uuid.uuid4().hex[:6]}")
    return {"tables": tables, "outcomes": outcomes}


def test_a_day_of_the_synthetic_fleet_passes_every_silver_check(spark, stack: Settings, fleet: list[Record]) -> None:
    ops = {op: sum(1 for r in fleet if r.op == op) for op in ("i", "u", "d")}
    assert sum(1 for r in fleet if r.op == "u" and r.metric == COUNTER) > 50, ops
    assert ops["d"] > 0

    result = _silver_checks(spark, stack, fleet)

    assert failures(result["outcomes"]) == {}
    checks = by_check(result["outcomes"])
    assert {"silver.counter_monotonic", "silver.completeness"} <= set(checks)
    assert checks["silver.completeness"].details["gaps"] == 0
    # The day holds each counter's reset, which the check accepts as a reset.
    silver = result["tables"]["silver"]
    profile = points_profile(silver.where(silver.event_date == DAY), DAY, stack.quality, silver=True).toPandas()
    resets = profile.loc[profile["metric"] == COUNTER, "counter_resets"]
    assert len(resets) == 3 and (resets == 1).all(), profile[["series_key", "counter_resets"]]


def test_a_counter_stepping_down_and_a_hole_in_a_series_fail_their_checks(
    spark, stack: Settings, fleet: list[Record]
) -> None:
    host = "site01-host0002"
    # A correction that takes one counter reading below the one before it (a real defect, not a reset).
    counter = [r for r in fleet if r.metric == COUNTER and r.tags["host"] == host]
    retracted = {r.ts_ms for r in counter if r.op == "d"}
    final = {
        r.ts_ms: r.value
        for r in sorted(counter, key=lambda r: r.ums_id)
        if r.ts_ms not in retracted and r.value is not None
    }
    readings = sorted(final.items())
    at = next(
        i
        for i in range(len(readings) // 2, len(readings) - 1)
        if readings[i - 1][1] < readings[i][1] < readings[i + 1][1] and readings[i - 1][1] > 1000
    )
    previous = readings[at - 1][1]
    wrong = previous - 1
    template = next(r for r in counter if r.ts_ms == readings[at][0])
    step_down = Record(
        COUNTER,
        template.tags,
        template.ts_ms,
        wrong,
        template.ums_id + 10**9,
        "u",
        offset=10**7,
        source="synthetic_fleet",
        namespace=NAMESPACE,
    )
    assert 0.1 * previous < wrong < previous
    # Five readings of one CPU series lost: a hole of six cadences.
    cpu = [r for r in fleet if r.metric == "sys.cpu.util" and r.tags["host"] == host]
    hole = {START + (600 + k) * CADENCE_MS for k in range(5)}
    present = sorted({r.ts_ms for r in cpu if r.ts_ms not in hole} - {r.ts_ms for r in cpu if r.op == "d"})
    missing = sum(round((b - a) / CADENCE_MS) - 1 for a, b in itertools.pairwise(present))
    records = [r for r in fleet if not (r.metric == "sys.cpu.util" and r.tags["host"] == host and r.ts_ms in hole)]

    result = _silver_checks(spark, stack, [*records, step_down])

    assert failures(result["outcomes"]) == {"silver.counter_monotonic": 1, "silver.completeness": missing}
    checks = by_check(result["outcomes"])
    assert checks["silver.counter_monotonic"].sample[0]["series_key"].startswith(f"{COUNTER}|")
    assert checks["silver.counter_monotonic"].sample[0]["counter_decreases_value"] == wrong
    completeness = checks["silver.completeness"]
    assert completeness.failing_series == 1 and completeness.details["gaps"] == 1
    assert completeness.sample[0]["series_key"] == f"sys.cpu.util|app=app01,host={host},site=site01"
