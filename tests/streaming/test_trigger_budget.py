"""Records per micro-batch: a points budget over the most points a v2 record holds, else records."""

from __future__ import annotations

from rtdp_dagster.config import Settings
from rtdp_dagster.streaming.app import records_per_trigger


def _settings(**stream: object) -> Settings:
    return Settings.model_validate({"stream": stream, "collection": {"ums_batch": {"max_points": 2000}}})


def test_without_a_points_budget_the_records_bound_holds() -> None:
    assert records_per_trigger(_settings(max_offsets_per_trigger=500)) == 500


def test_a_points_budget_bounds_the_records_by_full_v2_records() -> None:
    assert records_per_trigger(_settings(max_points_per_trigger=200_000)) == 100
    assert records_per_trigger(_settings(max_points_per_trigger=200_000, max_offsets_per_trigger=40)) == 40


def test_a_budget_below_one_record_still_reads_a_record_per_trigger() -> None:
    assert records_per_trigger(_settings(max_points_per_trigger=10)) == 1
