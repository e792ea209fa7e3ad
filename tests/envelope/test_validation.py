import pytest

from rtdp_dagster.collection.records import RawRecord
from rtdp_dagster.envelope import validation as v
from rtdp_dagster.envelope.schema import Envelope

NOW = 1_700_000_000_000
RULES = v.PointRules()


def convert(record: RawRecord) -> Envelope | v.Rejection:
    return v.to_envelope(
        record, namespace="a.b.c.d.v1.0.0", source="s", wave=1, collected_at=NOW, ums_id=7, rules=RULES
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
