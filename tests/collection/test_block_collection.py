"""A vectorised source's blocks (``read_blocks``) publish exactly what its rows (``read_window``) publish:
the same record bytes, the same dead letters with the same reasons, the same collection log."""

from pathlib import Path

import pytest

from rtdp_dagster.collection.collector import WindowContext, collect_window
from rtdp_dagster.collection.sources.synthetic import SyntheticSource
from rtdp_dagster.collection.state import CollectionState, LogRow
from rtdp_dagster.config.sources import MalformedRatesConfig, SyntheticSourceConfig
from rtdp_dagster.envelope.batch_builder import ClosedBatch, UmsBatchBounds
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.point_packer import PointPacker
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.envelope.row_block import RowBlock
from rtdp_dagster.envelope.validation import PointRules, PointValidator

T0 = 1_700_000_000_000
NOW = T0 + 3 * 3_600_000  # every revision of the windows is visible
CONFIG = SyntheticSourceConfig(
    name="fleet",
    namespace="synthetic.local.fleet.metrics.v1.0.0",
    cadence_s=1.0,
    sites=2,
    hosts_per_site=5,
    duplicate_rate=0.05,
    correction_rate=0.05,
    retraction_rate=0.05,
    malformed=MalformedRatesConfig(
        missing_timestamp=0.02,
        non_numeric_value=0.02,
        nan_value=0.02,
        inf_value=0.02,
        future_timestamp=0.02,
        invalid_metric=0.02,
        oversize_tag=0.02,
    ),
)


class RowsOnly:
    """The same source without ``read_blocks``: the collector reads it row by row."""

    def __init__(self, source: SyntheticSource) -> None:
        self.name = source.name
        self.read_window = source.read_window

    def close(self) -> None:
        return None


class FakePublisher:
    def __init__(self) -> None:
        self.batches: list[ClosedBatch] = []
        self.dead: list[dict] = []

    def series_partition(self, series: str) -> int:
        return len(series) % 3

    def send_batch(self, batch: ClosedBatch) -> None:
        self.batches.append(batch)

    def send_dead_letter(self, record: dict) -> None:
        self.dead.append(record)

    def confirm(self) -> int:
        return len(self.batches)

    def discard(self) -> None:
        self.batches, self.dead = [], []


def collect(tmp_path: Path, source: object, rules: PointRules, kinds: MetricKinds | None, name: str):
    publisher = FakePublisher()
    state = CollectionState(f"sqlite:///{tmp_path / f'{name}.db'}")
    state.plan_windows("fleet", 1, T0 + 60_000, 20_000, 20_000, first_start_ms=T0)
    # A linger no test outlives: records close on bounds and window ends only, so both runs cut alike.
    packer = PointPacker(rules, publisher.series_partition, UmsBatchBounds(max_points=97, linger_ms=1e9), kinds)
    context = WindowContext(
        source,  # type: ignore[arg-type]
        CONFIG.namespace,
        PointValidator(rules, kinds),
        publisher,  # type: ignore[arg-type]
        state,
        lambda: NOW,
        packer=packer,
    )
    logs: list[LogRow] = []
    while (window := state.next_window("fleet", 1)) is not None:
        logs.append(collect_window(context, window))
    state.dispose()
    counts = [(log.rows_read, log.rows_valid, log.rows_new, log.rows_dead_lettered) for log in logs]
    return publisher, counts


@pytest.mark.parametrize(
    ("rules", "kinds"),
    [
        (PointRules(), None),
        # Whole series refused (metric names over 14 characters), early timestamps refused, values
        # out of their kind's range refused: every column-wise rule has rows on both sides.
        (PointRules(max_metric_length=14, min_timestamp_ms=T0 + 25_000), None),
        (PointRules(), MetricKinds(patterns=[{"pattern": "sys.mem.*", "kind": "percent"}])),  # type: ignore[list-item]
    ],
)
def test_blocks_publish_exactly_what_rows_publish(tmp_path: Path, rules: PointRules, kinds: MetricKinds | None) -> None:
    by_block, block_counts = collect(tmp_path, SyntheticSource(CONFIG), rules, kinds, "blocks")
    by_row, row_counts = collect(tmp_path, RowsOnly(SyntheticSource(CONFIG)), rules, kinds, "rows")
    assert [(b.partition, b.points, b.value) for b in by_block.batches] == [
        (b.partition, b.points, b.value) for b in by_row.batches
    ]
    assert by_block.dead == by_row.dead
    assert block_counts == row_counts
    assert len(by_block.batches) > 3 and len(by_block.dead) > 10
    assert all(read == valid + dead for read, valid, _, dead in block_counts)


def test_rules_refuse_rows_inside_blocks(tmp_path: Path) -> None:
    rules = PointRules(max_metric_length=14, min_timestamp_ms=T0 + 25_000)
    publisher, _ = collect(tmp_path, SyntheticSource(CONFIG), rules, None, "refused")
    reasons = {letter["reason"] for letter in publisher.dead}
    assert {"invalid_metric_name", "timestamp_too_old"} <= reasons


def test_a_block_means_the_rows_of_read_window() -> None:
    source = SyntheticSource(CONFIG)
    items = list(source.read_blocks(T0, T0 + 30_000, NOW))
    blocks = [item for item in items if isinstance(item, RowBlock)]
    assert {block.op for block in blocks} == {"i", "u", "d"}
    flattened: list[RawRecord] = []
    for item in items:
        flattened += item.records() if isinstance(item, RowBlock) else [item]
    assert flattened == list(source.read_window(T0, T0 + 30_000, NOW))
    assert [record.raw for record in flattened] == [record.raw for record in source.read_window(T0, T0 + 30_000, NOW)]
    for block in blocks:
        assert [block.record(row) for row in range(len(block))] == list(block.records())
        assert [block.record(row).raw for row in range(len(block))] == [record.raw for record in block.records()]
