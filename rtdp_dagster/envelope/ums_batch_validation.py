"""A v2 record judged point by point exactly as the v1 record of each point would be.

For Python readers of v2 (tests, the dead-letter path, foreign tooling); the stream will parse v2
in the JVM. A structural defect rejects the whole record; otherwise every tuple gets its own
verdict, so one bad point never takes its neighbours with it.
"""

from __future__ import annotations

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import Envelope, EnvelopeError, encode
from rtdp_dagster.envelope.ums_batch import points, read_frame
from rtdp_dagster.envelope.validation import PointRules, Rejection, validate_payload


def validate_batch(
    payload: bytes | str | None,
    rules: PointRules,
    kinds: MetricKinds | None = None,
    received_ms: int | None = None,
) -> Rejection | list[Envelope | Rejection]:
    """The record's Rejection, or each point (in record order) as a valid Envelope or its Rejection."""
    if not payload:
        return Rejection("empty_record", "the record has no value (a tombstone or an empty message)")
    try:
        frame = read_frame(payload)
    except EnvelopeError as exc:
        return Rejection(exc.reason, exc.detail)
    verdicts: list[Envelope | Rejection] = []
    for point in points(frame):
        if isinstance(point, EnvelopeError):
            verdicts.append(Rejection(point.reason, point.detail))
        else:
            # The v1 rules themselves, on the point's v1 encoding: the two versions cannot disagree.
            verdicts.append(validate_payload(encode(point), rules, kinds, received_ms=received_ms))
    return verdicts
