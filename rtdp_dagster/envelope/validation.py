"""Point validity rules, and turning a source row into an envelope or a rejection with a reason.

The same rules (and reason codes) are applied by collectors before publishing and by the stream
before bronze, so a row rejected in one place is rejected everywhere. Given the metric kinds
(``quality.metric_kinds``), a value outside its kind's range is rejected too: the batch quality
checks judge silver and bronze by the same kinds.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rtdp_dagster.envelope.keys import point_key, point_key_of_series, series_key
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.envelope.schema import OPS, Envelope, EnvelopeError, decode

_NAME = re.compile(r"^[A-Za-z0-9._/-]+$")

# Stable reason codes: dead-letter rows, quarantine rows and DQ checks use these.
MISSING_TIMESTAMP = "missing_timestamp"
TIMESTAMP_IN_FUTURE = "timestamp_in_future"
TIMESTAMP_TOO_OLD = "timestamp_too_old"
NON_NUMERIC_VALUE = "non_numeric_value"
NON_FINITE_VALUE = "non_finite_value"
INVALID_METRIC_NAME = "invalid_metric_name"
INVALID_TAG = "invalid_tag"
OVERSIZE_TAGS = "oversize_tags"
INVALID_OP = "invalid_op"
VALUE_OUT_OF_RANGE = "value_out_of_range"
POINT_KEY_MISMATCH = "point_key_mismatch"


class PointRules(BaseModel):
    """Limits a point must respect to be accepted (configuration key ``validation``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_future_s: float = Field(default=600.0, ge=0)
    min_timestamp_ms: int = Field(default=946_684_800_000, description="2000-01-01T00:00:00Z")
    max_metric_length: int = Field(default=255, ge=1)
    max_tags: int = Field(default=16, ge=1)
    max_tag_key_length: int = Field(default=64, ge=1)
    max_tag_value_length: int = Field(default=256, ge=1)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str


def _number(value: Any) -> float | Rejection:
    if isinstance(value, bool) or value is None:
        return Rejection(NON_NUMERIC_VALUE, f"value {value!r} is not a number")
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return Rejection(NON_NUMERIC_VALUE, f"value {value[:64]!r} is not a number")
    else:
        return Rejection(NON_NUMERIC_VALUE, f"value of type {type(value).__name__} is not a number")
    if not math.isfinite(number):
        return Rejection(NON_FINITE_VALUE, f"value {number!r} is not finite")
    return number


def check_series(metric: Any, tags: Any, rules: PointRules) -> Rejection | None:
    """Rules on a series' identity (metric name and tags); None when they hold."""
    if not isinstance(metric, str) or not metric or len(metric) > rules.max_metric_length or not _NAME.match(metric):
        return Rejection(
            INVALID_METRIC_NAME, f"metric name {str(metric)[:80]!r} is empty, too long or has invalid characters"
        )
    if not isinstance(tags, dict) or len(tags) > rules.max_tags:
        return Rejection(
            OVERSIZE_TAGS, f"{len(tags) if isinstance(tags, dict) else tags!r} tags (at most {rules.max_tags})"
        )
    for key, tag_value in tags.items():
        if not isinstance(key, str) or not isinstance(tag_value, str):
            return Rejection(INVALID_TAG, f"tag {key!r}={tag_value!r} is not a string pair")
        if len(key) > rules.max_tag_key_length or len(tag_value) > rules.max_tag_value_length:
            return Rejection(OVERSIZE_TAGS, f"tag {key[:40]!r} is longer than allowed")
        if not key or not tag_value or not _NAME.match(key) or not _NAME.match(tag_value):
            return Rejection(INVALID_TAG, f"tag {key[:40]!r}={tag_value[:40]!r} is empty or has invalid characters")
    return None


def check_sample(value: Any, ts_ms: Any, op: Any, now_ms: int, rules: PointRules) -> float | Rejection | None:
    """Rules on one sample of a valid series: the numeric value (None for a retraction) or a Rejection."""
    if op not in OPS:
        return Rejection(INVALID_OP, f"operation {op!r} is not one of {OPS}")
    if ts_ms is None or isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
        return Rejection(MISSING_TIMESTAMP, f"timestamp {ts_ms!r} is missing or not an integer")
    if ts_ms > now_ms + rules.max_future_s * 1000:
        return Rejection(
            TIMESTAMP_IN_FUTURE, f"timestamp {ts_ms} is more than {rules.max_future_s:g}s ahead of {now_ms}"
        )
    if ts_ms < rules.min_timestamp_ms:
        return Rejection(TIMESTAMP_TOO_OLD, f"timestamp {ts_ms} is before {rules.min_timestamp_ms}")
    if op == "d":
        return None
    return _number(value)


def check_point_key(metric: str, tags: dict[str, str], ts_ms: int, given: str) -> Rejection | None:
    """The record's point_key must be the contract's hash of its identity (``keys.point_key``):
    a forged or stale key would keep a correction from replacing its point."""
    expected = point_key(metric, tags, ts_ms)
    if given == expected:
        return None
    return Rejection(
        POINT_KEY_MISMATCH,
        f"point_key {given[:80]!r} is not {expected!r}, the hash of (metric, sorted tags, ums_ts_ {ts_ms})",
    )


def check_value_range(metric: str, value: float | None, kinds: MetricKinds | None) -> Rejection | None:
    """The metric kind's range (a retraction has no value to judge); None when it holds or no kinds apply."""
    if kinds is None or value is None:
        return None
    problem = kinds.out_of_range(metric, value)
    return None if problem is None else Rejection(VALUE_OUT_OF_RANGE, problem)


class PointValidator:
    """Validates rows into envelopes, checking each series' identity once, not once per point."""

    _MAX_CACHED_SERIES = 200_000

    def __init__(self, rules: PointRules, kinds: MetricKinds | None = None) -> None:
        self.rules = rules
        self.kinds = kinds
        self._valid_series: set[str] = set()

    def to_envelope(
        self, record: RawRecord, *, namespace: str, source: str, wave: int, collected_at: int, ums_id: int
    ) -> Envelope | Rejection:
        """Validate one source row and build its envelope; ums_id is used when the row has no version."""
        metric, tags = record.metric, record.tags
        if not isinstance(metric, str) or not isinstance(tags, dict):
            rejection = check_series(metric, tags, self.rules)
            assert rejection is not None
            return rejection
        series = series_key(metric, tags)
        if series not in self._valid_series:
            rejection = check_series(metric, tags, self.rules)
            if rejection is not None:
                return rejection
            if len(self._valid_series) >= self._MAX_CACHED_SERIES:
                self._valid_series.clear()
            self._valid_series.add(series)
        checked = check_sample(record.value, record.ts_ms, record.op, collected_at, self.rules)
        if isinstance(checked, Rejection):
            return checked
        out_of_range = check_value_range(metric, checked, self.kinds)
        if out_of_range is not None:
            return out_of_range
        assert record.ts_ms is not None  # guaranteed by check_sample
        return Envelope(
            namespace=namespace,
            metric=metric,
            tags=tags,
            value=checked,
            ums_ts_=record.ts_ms,
            point_key=point_key_of_series(series, record.ts_ms),
            ums_id_=record.version if record.version is not None else ums_id,
            ums_op_=record.op,
            wave=wave,
            source=source,
            collected_at=collected_at,
            series=series,
        )


def validate_payload(
    payload: bytes | str | None,
    rules: PointRules,
    kinds: MetricKinds | None = None,
    received_ms: int | None = None,
) -> Envelope | Rejection:
    """A Kafka record's value checked against the envelope schema, the point rules, its point_key and
    the metric kinds.

    "Now" for the future-timestamp rule is received_ms: when the record was received, by a clock its
    producer does not control (the stream passes the broker's append time, else its micro-batch
    time); None: this process's clock. Never the envelope's ``collected_at``:
    one skewed producer clock would let any point through.
    """
    if not payload:
        return Rejection("empty_record", "the record has no value (a tombstone or an empty message)")
    try:
        envelope = decode(payload)
    except EnvelopeError as exc:
        return Rejection(exc.reason, exc.detail)
    rejection = check_series(envelope.metric, envelope.tags, rules)
    if rejection is not None:
        return rejection
    if envelope.ums_op_ != "d" and envelope.value is not None and not math.isfinite(envelope.value):
        return Rejection(NON_FINITE_VALUE, f"value {envelope.value!r} is not finite")
    now_ms = int(time.time() * 1000) if received_ms is None else received_ms
    checked = check_sample(envelope.value, envelope.ums_ts_, envelope.ums_op_, now_ms, rules)
    if isinstance(checked, Rejection):
        return checked
    return (
        check_point_key(envelope.metric, envelope.tags, envelope.ums_ts_, envelope.point_key)
        or check_value_range(envelope.metric, checked, kinds)
        or envelope
    )
