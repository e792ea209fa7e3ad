"""Grafana's time arithmetic, as its frontend does it: relative times (``now-6h``), panel time
overrides, and the automatic interval of a panel (time range / max data points, rounded)."""

from __future__ import annotations

import calendar
import datetime as dt
import re

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdwMy]))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# Grafana's interval units (rangeutil.describeInterval); M and y are fixed lengths there.
_INTERVAL = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])")
_INTERVAL_S = {"y": 31_536_000, "M": 2_592_000, "w": 604_800, "d": 86_400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
# rangeutil.roundInterval: (upper bound exclusive, rounded interval), both in ms.
_ROUNDING = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_ONE_YEAR_MS = 31_536_000_000


class TimeExpressionError(ValueError):
    pass


def _minus_months(moment: dt.datetime, months: int) -> dt.datetime:
    # moment.js clamps the day to the target month's length (Mar 31 - 1M = Feb 28/29).
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def parse_relative(expression: str, now_ms: int) -> int:
    """``now`` or ``now-<n><unit>`` (units s m h d w M y) as epoch ms, in UTC."""
    match = _RELATIVE.match(expression.strip())
    if not match:
        raise TimeExpressionError(f"unsupported time expression {expression!r} (expected now or now-<n><unit>)")
    amount, unit = match.groups()
    if amount is None:
        return now_ms
    if unit in _UNIT_S:
        return now_ms - int(amount) * _UNIT_S[unit] * 1000
    now = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
    months = int(amount) * (12 if unit == "y" else 1)
    return int(_minus_months(now, months).timestamp() * 1000)


def panel_range(dashboard_from: str, dashboard_to: str, time_from: str | None) -> tuple[str, str]:
    """The raw (from, to) of a panel: a panel's ``timeFrom`` (e.g. ``3y``) replaces the range with the last 3y."""
    if not time_from:
        return dashboard_from, dashboard_to
    expression = time_from if time_from.startswith("now") else f"now-{time_from}"
    return expression, "now"


def interval_ms(text: str) -> float:
    """rangeutil.intervalToMs: ``10s`` -> 10000; a bare number is seconds."""
    try:
        return float(text) * 1000
    except ValueError:
        pass
    match = _INTERVAL.match(text)
    if not match:
        raise TimeExpressionError(f"invalid interval {text!r}")
    return _INTERVAL_S[match.group(2)] * 1000 * int(float(match.group(1)))


def round_interval(ms: float) -> int:
    for bound, rounded in _ROUNDING:
        if ms < bound:
            return rounded
    return _ONE_YEAR_MS


def seconds_to_hms(seconds: float) -> str:
    """rangeutil.secondsToHms: the largest whole unit only (3600 -> 1h, 604800 -> 7d)."""
    within_year = seconds % 31_536_000
    for whole, unit in (
        (seconds // 31_536_000, "y"),
        (within_year // 86_400, "d"),
        (within_year % 86_400 // 3600, "h"),
        (within_year % 86_400 % 3600 // 60, "m"),
        (within_year % 86_400 % 3600 % 60 // 1, "s"),
    ):
        if whole:
            return f"{int(whole)}{unit}"
    millis = int(seconds * 1000)
    return f"{millis}ms" if millis else "less than a millisecond"


def auto_interval(from_ms: int, to_ms: int, max_data_points: int, min_interval: str | None) -> str:
    """rangeutil.calculateInterval: what Grafana passes to a data source as ``options.interval``."""
    low_limit = interval_ms(min_interval) if min_interval else 1
    rounded = max(round_interval((to_ms - from_ms) / max_data_points), low_limit)
    return seconds_to_hms(rounded / 1000)
