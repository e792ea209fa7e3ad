"""Python's verdict on one row the native path did not accept: a v1 record, a point of a v2 record,
or a v2 record whose frame the JVM could not read. Final, like ``validate_payload``'s.

A v2 record is judged once per call however many of its points ask (``BatchVerdicts``): each point
gets the verdict ``validate_batch`` gives it; a record refused as a whole says so (``whole``), so
the caller keeps one row of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.ums_batch_validation import validate_batch
from rtdp_dagster.envelope.validation import PointRules, Rejection, validate_payload
from rtdp_dagster.streaming.ums_batch_parse import MAX_RECORD_BYTES, MAX_RECORD_POINTS, OVERSIZE_BATCH


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: str | None = None
    detail: str | None = None
    whole: bool = False  # the whole record is refused (one quarantine row for it)


ACCEPTED = Verdict()


def _refused(rejection: Rejection, whole: bool) -> Verdict:
    return Verdict(rejection.reason, rejection.detail[:1000], whole)


def _oversize(payload: bytes) -> Rejection | None:
    if len(payload) > MAX_RECORD_BYTES:
        return Rejection(OVERSIZE_BATCH, f"the record has {len(payload)} bytes, at most {MAX_RECORD_BYTES} are read")
    return None


class BatchVerdicts:
    """Verdicts of v2 records, each record judged once (keyed by its bytes and receive time)."""

    def __init__(self, rules: PointRules, kinds: MetricKinds | None) -> None:
        self.rules, self.kinds = rules, kinds
        self._judged: dict[tuple[bytes, int], Rejection | list[Envelope | Rejection]] = {}

    def _record(self, payload: bytes, received_ms: int) -> Rejection | list[Envelope | Rejection]:
        key = (payload, received_ms)
        if key not in self._judged:
            judged = _oversize(payload) or validate_batch(payload, self.rules, self.kinds, received_ms)
            if isinstance(judged, list) and len(judged) > MAX_RECORD_POINTS:
                judged = Rejection(OVERSIZE_BATCH, f"the record has {len(judged)} points, at most {MAX_RECORD_POINTS}")
            self._judged[key] = judged
        return self._judged[key]

    def point(self, payload: bytes, received_ms: int, index: int, frame_read: bool) -> Verdict:
        """The point at index of the record; frame_read: the JVM read the frame (and made index)."""
        judged = self._record(payload, received_ms)
        if isinstance(judged, Rejection):
            return _refused(judged, whole=True)
        if not frame_read or index >= len(judged):
            # Python reads a frame the JVM could not: refused whole rather than half-read.
            return Verdict("malformed_batch", "the record's frame is not readable by the stream", whole=True)
        point = judged[index]
        return ACCEPTED if isinstance(point, Envelope) else _refused(point, whole=False)


def record_verdict(
    payload: bytes | None,
    received_ms: int,
    rules: PointRules,
    kinds: MetricKinds | None,
    *,
    index: int = 0,
    ums_frame: bool | None = None,
    batches: BatchVerdicts | None = None,
) -> Verdict:
    """ums_frame: None for a v1 record; for a v2 record whether the JVM read its frame."""
    if ums_frame is None or not payload:
        result = validate_payload(payload, rules, kinds, received_ms)
        return ACCEPTED if isinstance(result, Envelope) else _refused(result, whole=False)
    return (batches or BatchVerdicts(rules, kinds)).point(payload, received_ms, index, ums_frame)
