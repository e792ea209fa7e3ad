"""Synthetic source: reproducible, and injecting its faults at the configured rates."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from typing import Any

import pytest

from rtdp_dagster.collection.sources.synthetic import MALFORMED_KINDS, PointId, SyntheticSource
from rtdp_dagster.config.sources import SyntheticSourceConfig
from rtdp_dagster.envelope.records import RawRecord

START = 1_800_000_000_000
CADENCE_MS = 10_000
FOREVER = 2**62
MALFORMED_RATE = 0.002
_NAME = re.compile(r"^[A-Za-z0-9._/-]+$")


def make_source(**options: Any) -> SyntheticSource:
    config: dict[str, Any] = {
        "name": "synthetic",
        "namespace": "synthetic.local.test.points.v1.0.0",
        "seed": 42,
        "sites": 2,
        "hosts_per_site": 10,
        "cadence_s": CADENCE_MS / 1000,
        "lateness": {"jitter_s": 5, "late_share": 0.1, "late_min_s": 30, "late_max_s": 3000},
        "duplicate_rate": 0.02,
        "correction_rate": 0.02,
        "retraction_rate": 0.01,
        "revision_delay_min_s": 60,
        "revision_delay_max_s": 1800,
        "malformed": dict.fromkeys(MALFORMED_KINDS, MALFORMED_RATE),
    }
    config.update(options)
    return SyntheticSource(SyntheticSourceConfig.model_validate(config))


def identity(record: RawRecord) -> str:
    """Everything about a record as one comparable string (repr keeps NaN equal to itself)."""
    fields = (record.metric, sorted(record.tags.items()), record.ts_ms, record.value, record.op, record.version)
    return repr((*fields, record.raw))


def malformed_kind(record: RawRecord, end_ms: int) -> str | None:
    """Which kind of bad row this is, judged from the record itself."""
    if record.ts_ms is None:
        return "missing_timestamp"
    if isinstance(record.value, str):
        return "non_numeric_value"
    if math.isnan(record.value):
        return "nan_value"
    if math.isinf(record.value):
        return "inf_value"
    if record.ts_ms > end_ms + 365 * 86_400_000:
        return "future_timestamp"
    if record.metric is None or not _NAME.match(record.metric):
        return "invalid_metric"
    if any(len(value) > 256 for value in record.tags.values()):
        return "oversize_tag"
    return None


def point_id(record: RawRecord) -> PointId:
    assert record.metric is not None and record.ts_ms is not None
    return (record.metric, tuple(sorted(record.tags.items())), record.ts_ms)


@pytest.fixture(scope="module")
def large_window() -> tuple[SyntheticSource, int, list[RawRecord]]:
    """100 series x 2000 steps = 200k points, read when everything is visible."""
    source = make_source()
    end = START + 2000 * CADENCE_MS
    return source, end, list(source.read_window(START, end, now_ms=FOREVER))


def test_reproducible_across_instances_and_read_orders() -> None:
    end = START + 300 * CADENCE_MS
    now = START + 200 * CADENCE_MS  # cuts through delays and revisions
    whole = sorted(map(identity, make_source().read_window(START, end, now_ms=now)))
    bounds = [*range(START, end, 7 * CADENCE_MS + 1234), end]
    pieces = list(itertools.pairwise(bounds))
    random.Random(5).shuffle(pieces)
    other = make_source()
    in_pieces = sorted(identity(r) for start, stop in pieces for r in other.read_window(start, stop, now_ms=now))
    assert in_pieces == whole
    assert sorted(map(identity, make_source(seed=43).read_window(START, end, now_ms=now))) != whole


def test_a_series_keeps_its_values_when_other_series_are_added() -> None:
    end = START + 50 * CADENCE_MS
    small = {point_id(r): r.value for r in make_source(malformed={}).read_window(START, end, FOREVER) if r.op == "i"}
    large = {
        point_id(r): r.value
        for r in make_source(malformed={}, hosts_per_site=20, sites=3).read_window(START, end, FOREVER)
        if r.op == "i"
    }
    assert len(large) == 3 * len(small)
    assert all(large[key] == value for key, value in small.items())


def test_window_is_half_open_on_the_grid() -> None:
    source = make_source(malformed={}, duplicate_rate=0, correction_rate=0, retraction_rate=0)
    records = list(source.read_window(START, START + 3 * CADENCE_MS, FOREVER))
    assert {r.ts_ms for r in records} == {START + CADENCE_MS, START + 2 * CADENCE_MS, START + 3 * CADENCE_MS}
    assert len(records) == 3 * len(source.series)


def test_fault_rates_are_observed(large_window: tuple[SyntheticSource, int, list[RawRecord]]) -> None:
    source, end, records = large_window
    points = len(source.series) * 2000
    judged = [(record, malformed_kind(record, end)) for record in records]
    kinds = Counter(kind for _, kind in judged if kind)
    for kind in MALFORMED_KINDS:
        assert 0.75 * MALFORMED_RATE * points < kinds[kind] < 1.25 * MALFORMED_RATE * points, kind
    assert all(record.raw["malformed"] == kind for record, kind in judged if kind)
    # Duplicate, correction and retraction rates are shares of the well-formed points.
    well_formed = points - sum(kinds.values())
    inserts = Counter(point_id(record) for record, kind in judged if kind is None and record.op == "i")
    assert len(inserts) == well_formed
    assert max(inserts.values()) == 2
    duplicates = sum(1 for count in inserts.values() if count == 2)
    ops = Counter(record.op for record in records)
    for observed, rate in ((duplicates, 0.02), (ops["u"], 0.02), (ops["d"], 0.01)):
        assert 0.9 * rate * well_formed < observed < 1.1 * rate * well_formed


def test_revisions_come_later_with_larger_versions(large_window: tuple[SyntheticSource, int, list[RawRecord]]) -> None:
    _, end, records = large_window
    originals = {point_id(r): r for r in records if r.op == "i" and malformed_kind(r, end) is None}
    revisions = [r for r in records if r.op in ("u", "d")]
    assert revisions
    for revision in revisions:
        original = originals[point_id(revision)]
        assert revision.version is not None and original.version is not None
        assert revision.version >= original.version + 60_000
        if revision.op == "u":
            assert revision.value != original.value and math.isfinite(revision.value)
        else:
            assert revision.value == original.value


def test_lateness_and_revisions_honour_now() -> None:
    source = make_source()
    end = START + 360 * CADENCE_MS
    for now in (end, end + 60_000, end + 600_000, end + 3_600_000):
        records = list(source.read_window(START, end, now_ms=now))
        # A record is visible from its version on (the moment it became ready).
        assert all(r.version is not None and r.version <= now for r in records)
        inserted = {point_id(r) for r in records if r.op == "i" and malformed_kind(r, end) is None}
        assert all(point_id(r) in inserted for r in records if r.op in ("u", "d"))
    at_once = list(source.read_window(end - 600_000, end, now_ms=end))
    later = list(source.read_window(end - 600_000, end, now_ms=end + 3_600_000))
    # Late points (10 %, 30 s-50 min) and revisions (1-30 min) are missing right at the end.
    assert len(at_once) < 0.95 * len(later)
    assert {identity(r) for r in at_once} <= {identity(r) for r in later}


@pytest.mark.parametrize("now_offset_ms", [0, 600_000, None])
def test_expected_truth_is_the_fold_of_what_was_read(now_offset_ms: int | None) -> None:
    source = make_source()
    end = START + 500 * CADENCE_MS
    now = FOREVER if now_offset_ms is None else end + now_offset_ms
    latest: dict[PointId, RawRecord] = {}
    for record in source.read_window(START, end, now_ms=now):
        if malformed_kind(record, end) is None:
            key = point_id(record)
            if key not in latest or (record.version or 0) > (latest[key].version or 0):
                latest[key] = record
    folded = {key: record.value for key, record in latest.items() if record.op != "d"}
    truth = source.expected_truth(START, end, now_ms=None if now_offset_ms is None else now)
    assert truth == folded
    grid = len(source.series) * 500
    # Malformed (1.4 %) and retracted (1 %) points are not in the final truth.
    assert 0.95 * grid < len(truth) < 0.99 * grid


def test_shapes_behave() -> None:
    source = make_source(malformed={}, duplicate_rate=0, correction_rate=0, retraction_rate=0, lateness={})
    end = START + 2592 * CADENCE_MS  # 7.2 hours
    by_series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for record in source.read_window(START, end, FOREVER):
        assert record.ts_ms is not None
        by_series.setdefault((str(record.metric), record.tags["host"]), []).append((record.ts_ms, record.value))
    for (metric, _), points in by_series.items():
        values = [value for _, value in sorted(points)]
        if metric == "sys.cpu.util":
            assert all(0 <= value <= 100 for value in values)
        if metric == "sys.cpu.cores":
            assert set(values) == {8.0}
        if metric == "app.requests.count":
            drops = sum(1 for a, b in itertools.pairwise(values) if b < a)
            assert drops <= 1  # at most one reset a day, 7.2 hours read
            assert values[-1] > values[0] or drops == 1


def test_corrected_counters_stay_counters() -> None:
    """A counter's correction is another reading it could have had: the truth only drops at its resets."""
    source = make_source(malformed={}, lateness={}, correction_rate=0.3, retraction_rate=0.05)
    end = START + 8640 * CADENCE_MS  # a day: one reset per counter series
    records = list(source.read_window(START, end, FOREVER))
    originals = {point_id(r): r.value for r in records if r.op == "i"}
    counters = {m.name for m in source._config.metrics if m.shape == "counter"}
    corrections = [r for r in records if r.op == "u" and r.metric in counters]
    assert len(corrections) > 1000
    assert all(r.value != originals[point_id(r)] for r in corrections)
    by_series: dict[tuple[str, tuple], list[tuple[int, float]]] = {}
    for (metric, tags, ts), value in source.expected_truth(START, end).items():
        if metric in counters:
            by_series.setdefault((metric, tags), []).append((ts, value))
    resets = 0
    for points in by_series.values():
        values = [value for _, value in sorted(points)]
        drops = [(a, b) for a, b in itertools.pairwise(values) if b < a]
        # A reset starts again from nothing (a retracted reset reading: from one step's increase).
        assert all(b <= 0.1 * a for a, b in drops), drops[:5]
        resets += len(drops)
    assert len(by_series) * 0.9 <= resets <= len(by_series)
