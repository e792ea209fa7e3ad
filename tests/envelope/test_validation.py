import orjson
import pytest

from rtdp_dagster.envelope import validation as v
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.envelope.schema import Envelope

NOW = 1_700_000_000_000
RULES = v.PointRules()


def convert(record: RawRecord) -> Envelope | v.Rejection:
    return v.PointValidator(RULES).to_envelope(
        record, namespace="a.b.c.d.v1.0.0", source="s", wave=1, collected_at=NOW, ums_id=7
    )


def good(**overrides: object) -> RawRecord:
    fields: dict = {"metric": "sys.cpu", "tags": {"host": "web-01"}, "value": 1.5, "ts_ms": NOW - 1000}
    fields.update(overrides)
    return RawRecord(**fields)


def test_valid_row_becomes_an_envelope() -> None:
    envelope = convert(good(value="2.5", version=None))
    assert isinstance(envelope, Envelope)
    assert envelope.value == 2.5 and envelope.ums_id_ == 7 and envelope.ums_ts_ == NOW - 1000


def test_source_version_wins_over_derived_id() -> None:
    envelope = convert(good(op="u", version=99))
    assert isinstance(envelope, Envelope) and envelope.ums_id_ == 99 and envelope.ums_op_ == "u"


def test_retraction_needs_no_value() -> None:
    envelope = convert(good(op="d", value=None))
    assert isinstance(envelope, Envelope) and envelope.value is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (good(ts_ms=None), v.MISSING_TIMESTAMP),
        (good(value="abc"), v.NON_NUMERIC_VALUE),
        (good(value=None), v.NON_NUMERIC_VALUE),
        (good(value=True), v.NON_NUMERIC_VALUE),
        (good(value=float("nan")), v.NON_FINITE_VALUE),
        (good(value="inf"), v.NON_FINITE_VALUE),
        (good(ts_ms=NOW + 3_600_000), v.TIMESTAMP_IN_FUTURE),
        (good(ts_ms=1000), v.TIMESTAMP_TOO_OLD),
        (good(metric="cpu usage%"), v.INVALID_METRIC_NAME),
        (good(metric=None), v.INVALID_METRIC_NAME),
        (good(tags={"host": "x" * 300}), v.OVERSIZE_TAGS),
        (good(tags={f"k{i}": "v" for i in range(20)}), v.OVERSIZE_TAGS),
        (good(tags={"host": "a b"}), v.INVALID_TAG),
        (good(op="x"), v.INVALID_OP),
    ],
)
def test_each_bad_row_kind_gets_its_reason(record: RawRecord, reason: str) -> None:
    result = convert(record)
    assert isinstance(result, v.Rejection)
    assert result.reason == reason
    assert result.detail


def _record(**changes: object) -> bytes:
    """A collector's record of a point a second before NOW, as JSON, with changes."""
    envelope = convert(good())
    assert isinstance(envelope, Envelope)
    return orjson.dumps(envelope.to_dict() | changes)


def test_a_record_is_judged_by_when_it_was_received_not_by_its_own_collected_at() -> None:
    month = 30 * 86_400_000
    skewed = _record(ums_ts_=NOW + month, collected_at=NOW + month)
    rejected = v.validate_payload(skewed, RULES, received_ms=NOW)
    assert isinstance(rejected, v.Rejection) and rejected.reason == v.TIMESTAMP_IN_FUTURE
    # A record that waited on Kafka is judged by its arrival there, however old its collected_at.
    assert isinstance(v.validate_payload(_record(collected_at=NOW - month), RULES, received_ms=NOW), Envelope)


def test_a_point_key_that_is_not_the_hash_of_its_identity_is_refused() -> None:
    assert isinstance(v.validate_payload(_record(), RULES, received_ms=NOW), Envelope)
    forged = v.validate_payload(_record(point_key="0" * 32), RULES, received_ms=NOW)
    assert isinstance(forged, v.Rejection) and forged.reason == v.POINT_KEY_MISMATCH
    assert "'00000000000000000000000000000000'" in forged.detail
    assert repr(point_key("sys.cpu", {"host": "web-01"}, NOW - 1000)) in forged.detail
    moved = v.validate_payload(_record(ums_ts_=NOW - 2000), RULES, received_ms=NOW)  # the key of another time
    assert isinstance(moved, v.Rejection) and moved.reason == v.POINT_KEY_MISMATCH
