"""The collector with envelope v2: batches sent before the window is confirmed, the log counts points,
and a window whose batches were not acknowledged stays pending and is published again in full."""

from pathlib import Path

import pytest

from rtdp_dagster.collection.collector import WindowContext, batch_packer, collect_window
from rtdp_dagster.collection.publisher import PublishError
from rtdp_dagster.collection.sources.synthetic import SyntheticSource
from rtdp_dagster.collection.state import CollectionState
from rtdp_dagster.config import CollectionConfig
from rtdp_dagster.config.sources import MalformedRatesConfig, SyntheticSourceConfig
from rtdp_dagster.envelope.batch_builder import ClosedBatch, UmsBatchBounds
from rtdp_dagster.envelope.point_packer import PointPacker
from rtdp_dagster.envelope.ums_batch import decode_batch
from rtdp_dagster.envelope.validation import PointRules, PointValidator

T0 = 1_700_000_000_000


class FakePublisher:
    """Records what the collector sends and when it confirms; can refuse one confirm."""

    def __init__(self, fail_confirms: int = 0) -> None:
        self.batches: list[ClosedBatch] = []
        self.dead: list[dict] = []
        self.events: list[str] = []
        self.fail_confirms = fail_confirms

    def series_partition(self, series: str) -> int:
        return len(series) % 3

    def send_batch(self, batch: ClosedBatch) -> None:
        self.batches.append(batch)
        self.events.append("batch")

    def send_dead_letter(self, record: dict) -> None:
        self.dead.append(record)

    def confirm(self) -> int:
        self.events.append("confirm")
        if self.fail_confirms:
            self.fail_confirms -= 1
            raise PublishError("1 of 3 records not acknowledged")
        return len(self.batches)

    def discard(self) -> None:
        self.events.append("discard")
        self.batches, self.dead = [], []


def context(tmp_path: Path, publisher: FakePublisher) -> tuple[WindowContext, CollectionState]:
    config = SyntheticSourceConfig(
        name="fleet",
        namespace="synthetic.local.fleet.metrics.v1.0.0",
        cadence_s=1.0,
        sites=2,
        hosts_per_site=5,
        duplicate_rate=0.02,
        malformed=MalformedRatesConfig(non_numeric_value=0.02, invalid_metric=0.02),
    )
    state = CollectionState(f"sqlite:///{tmp_path / 'state.db'}")
    state.plan_windows("fleet", 1, T0 + 30_000, 30_000, 30_000, first_start_ms=T0)
    packer = PointPacker(PointRules(), publisher.series_partition, UmsBatchBounds(max_points=64))
    ctx = WindowContext(
        SyntheticSource(config),
        config.namespace,
        PointValidator(PointRules()),
        publisher,  # type: ignore[arg-type]
        state,
        lambda: T0 + 3_600_000,
        packer=packer,
    )
    return ctx, state


def test_batches_are_sent_before_the_confirm_and_the_log_counts_points(tmp_path: Path) -> None:
    publisher = FakePublisher()
    ctx, state = context(tmp_path, publisher)
    window = state.next_window("fleet", 1)
    assert window is not None
    log = collect_window(ctx, window)
    assert publisher.events[-1] == "confirm" and publisher.events.count("batch") == len(publisher.batches) > 2
    points = [item for batch in publisher.batches for item in decode_batch(batch.value)]
    assert all(batch.points <= 64 for batch in publisher.batches)
    assert log.rows_valid == len(points) > len(publisher.batches)
    assert log.rows_dead_lettered == len(publisher.dead) > 0
    assert log.rows_read == log.rows_valid + log.rows_dead_lettered
    assert log.rows_new == len({item.point_key for item in points}) < log.rows_valid  # duplicates are not new
    assert state.next_window("fleet", 1) is None
    state.dispose()


def test_an_unacknowledged_window_stays_pending_and_is_published_again(tmp_path: Path) -> None:
    publisher = FakePublisher(fail_confirms=1)
    ctx, state = context(tmp_path, publisher)
    window = state.next_window("fleet", 1)
    assert window is not None
    with pytest.raises(PublishError):
        collect_window(ctx, window)
    assert publisher.events[-2:] == ["confirm", "discard"]
    assert state.log_rows(source="fleet") == []
    retry = state.next_window("fleet", 1)
    assert retry is not None and (retry.start_ms, retry.end_ms) == (window.start_ms, window.end_ms)
    log = collect_window(ctx, retry)
    assert log.attempts == 2
    assert sum(batch.points for batch in publisher.batches) == log.rows_valid > 0
    state.dispose()


def test_the_configuration_chooses_the_envelope_version() -> None:
    publisher = FakePublisher()
    assert batch_packer(CollectionConfig(envelope_version=1), PointRules(), publisher) is None  # type: ignore[arg-type]
    assert batch_packer(CollectionConfig(), PointRules(), publisher) is not None  # type: ignore[arg-type]
    config = CollectionConfig(envelope_version=2, ums_batch=UmsBatchBounds(max_points=10))
    packer = batch_packer(config, PointRules(), publisher)  # type: ignore[arg-type]
    assert packer is not None and packer.bounds.max_points == 10
