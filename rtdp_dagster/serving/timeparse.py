"""OpenTSDB times and durations: epoch seconds or milliseconds, ``1h-ago``, ``2026/11/21-12:00:00``."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rtdp_dagster.batch.intervals import DAY_MS, HOUR_MS, MINUTE_MS
from rtdp_dagster.serving.errors import bad_request

# OpenTSDB's units; in durations and relative times a month is 30 days and a year 365 days.
UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "m": MINUTE_MS,
    "h": HOUR_MS,
    "d": DAY_MS,
    "w": 7 * DAY_MS,
    "n": 30 * DAY_MS,
    "y": 365 * DAY_MS,
}
_DURATION = re.compile(r"^(\d{1,12})(ms|s|m|h|d|w|n|y)$")
_ABSOLUTE_FORMATS = ("%Y/%m/%d-%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d-%H:%M", "%Y/%m/%d %H:%M", "%Y/%m/%d")
# More than 10 integer digits is milliseconds (10^10 s is the year 2286), as OpenTSDB reads them.
_MS_THRESHOLD = 10**10


def duration_ms(text: str, what: str = "duration") -> int:
    """Milliseconds of ``<n><unit>`` (units ms, s, m, h, d, w, n, y)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise bad_request(f"invalid {what} {text!r}: expected <number><unit> with unit ms, s, m, h, d, w, n or y")
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def parse_time(value: object, now_ms: int, what: str, timezone: str = "UTC") -> int:
    """Epoch ms of an OpenTSDB time: a number (s or ms), ``now``, ``<n><unit>-ago`` or an absolute date."""
    if isinstance(value, bool) or value is None:
        raise bad_request(f"invalid {what} time {value!r}")
    if isinstance(value, int | float):
        return _epoch(float(value), what)
    if not isinstance(value, str):
        raise bad_request(f"invalid {what} time {value!r}: expected a number or a string")
    text = value.strip()
    if text.lower() == "now":
        return now_ms
    if text.lower().endswith("-ago"):
        return now_ms - duration_ms(text[:-4], f"relative {what} time")
    if re.fullmatch(r"\d+(\.\d{1,3})?", text):
        return _epoch(float(text), what)
    zone = _zone(timezone)
    for pattern in _ABSOLUTE_FORMATS:
        try:
            moment = dt.datetime.strptime(text, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
        return int(moment.timestamp() * 1000)
    raise bad_request(
        f"invalid {what} time {value!r}: expected epoch seconds or milliseconds, 'now', '<n><unit>-ago' "
        "or yyyy/MM/dd[-HH:mm[:ss]]"
    )


def _epoch(number: float, what: str) -> int:
    if not number == number or number < 0 or number > 1e14:  # NaN, negative, or beyond year 5000 in ms
        raise bad_request(f"invalid {what} time {number!r}")
    return round(number) if number >= _MS_THRESHOLD else round(number * 1000)


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise bad_request(f"unknown timezone {name!r}") from None
