"""The deduplication interval a VictoriaMetrics reports, read without one."""

from __future__ import annotations

import pytest

from rtdp_dagster.tsdb.dedup import parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"), [("1ms", 1.0), ("0", 0.0), ("0s", 0.0), ("30s", 30_000.0), ("1m30s", 90_000.0), ("500us", 0.5)]
)
def test_duration_flags_in_milliseconds(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "1", "ms", "1d", "1ms2"])
def test_what_is_not_a_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ms(text)
