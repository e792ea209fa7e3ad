"""Turning what a source read into record fields, without judging it.

Parsing only: a value that is not a number stays what it was (the collector rejects it with a
reason), a timestamp that cannot be read becomes None, and the raw row is made JSON-safe so the
dead-letter topic can carry it.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def number_or_as_read(value: Any) -> Any:
    """A float for anything numeric (including numeric text); anything else unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def datetime_to_ms(moment: datetime) -> int:
    """Epoch ms of a datetime; a naive one is taken as UTC (how the tables here store time)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def ms_to_datetime(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def iso_to_ms(text: str) -> int | None:
    """Epoch ms of ISO 8601 text ("2014-02-14 14:30:00", "...T...Z", "+02:00"), None if unreadable."""
    try:
        return datetime_to_ms(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def jsonable(value: Any) -> Any:
    """The value as JSON can carry it: non-finite floats, decimals, times and bytes as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)
