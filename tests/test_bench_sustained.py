"""The sustained-rate benchmark's pure parts: its load generator's records and its lag verdict."""

from __future__ import annotations

import orjson
import pytest

from bench.load_producer import HOSTS, Template
from bench.scenarios.sustained import MAX_LAG_S, SETTLE_S, Window
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.validation import PointRules, validate_payload


def test_template_records_are_the_platform_encoding_of_valid_points():
    template = Template("rtdp.bench.load")
    template.check(samples=200)  # raises on any difference from ``encode``
    key, value = template.record(HOSTS + 7, 1_795_000_000_123)
    point = orjson.loads(value)
    assert key == b"rtdp.bench.load|host=h0007"
    assert point["tags"] == {"host": "h0007"}
    assert point["value"] == 7.0
    assert point["point_key"] == point_key("rtdp.bench.load", {"host": "h0007"}, 1_795_000_000_123)
    assert isinstance(validate_payload(value, PointRules()), Envelope)


def test_points_of_one_host_never_share_a_key():
    template = Template("rtdp.bench.load")
    now = 1_795_000_000_000
    keys = {orjson.loads(template.record(i, now + i // HOSTS)[1])["point_key"] for i in range(3 * HOSTS)}
    assert len(keys) == 3 * HOSTS


def _window(rate: int, lags: list[int], produced_share: float = 1.0) -> Window:
    seconds = SETTLE_S + 2.0 * len(lags)
    window = Window(rate, seconds, produced=int(rate * seconds * produced_share))
    window.lags = [(SETTLE_S + 2.0 * n, lag) for n, lag in enumerate(lags)]
    return window


def test_a_sawing_lag_that_keeps_its_low_points_is_bounded():
    rate = 10_000
    window = _window(rate, [20_000, 60_000, 100_000] * 10)
    assert window.growth_s == pytest.approx(0.0)
    assert window.bounded


def test_a_lag_whose_low_points_rise_is_not_bounded():
    rate = 10_000
    window = _window(rate, [20_000 + 3_000 * n for n in range(30)])  # 3% of the rate behind, every 2 s
    assert window.growth_s > 5
    assert not window.bounded


def test_a_lag_beyond_its_ceiling_is_not_bounded_even_if_flat():
    rate = 10_000
    window = _window(rate, [int(MAX_LAG_S * rate) + 1] * 30)
    assert window.growth_s == pytest.approx(0.0)
    assert not window.bounded


def test_a_load_generator_that_fell_short_of_the_rate_judges_nothing():
    window = _window(10_000, [20_000] * 30, produced_share=0.9)
    assert not window.bounded
