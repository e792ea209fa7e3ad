import json
from pathlib import Path

import jsonschema
import pytest

from rtdp_dagster.envelope.keys import point_key, series_key
from rtdp_dagster.envelope.schema import Envelope, EnvelopeError, decode, encode, json_schema

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "envelope.schema.json"


def make_envelope(**overrides: object) -> Envelope:
    fields: dict = {
        "namespace": "cloudwatch.aws01.ec2.cpu_utilization.v1.0.0",
        "metric": "cloudwatch.ec2.cpu_utilization",
        "tags": {"instance": "24ae8d", "service": "ec2"},
        "value": 12.5,
        "ums_ts_": 1_700_000_000_000,
        "point_key": point_key(
            "cloudwatch.ec2.cpu_utilization", {"instance": "24ae8d", "service": "ec2"}, 1_700_000_000_000
        ),
        "ums_id_": 1_700_000_000_500_000,
        "ums_op_": "i",
        "wave": 1,
        "source": "nab",
        "collected_at": 1_700_000_000_500,
    }
    fields.update(overrides)
    return Envelope(**fields)


def test_round_trip() -> None:
    envelope = make_envelope()
    assert decode(encode(envelope)) == envelope


def test_keys_ignore_tag_order_and_separate_series() -> None:
    assert series_key("m", {"b": "2", "a": "1"}) == "m|a=1,b=2"
    assert point_key("m", {"a": "1", "b": "2"}, 5) == point_key("m", {"b": "2", "a": "1"}, 5)
    assert point_key("m", {"a": "1"}, 5) != point_key("m", {"a": "1"}, 6)
    assert point_key("m", {"a": "1"}, 5) != point_key("m", {"a": "2"}, 5)


def test_compatible_evolution_decodes() -> None:
    record = make_envelope().to_dict()
    record["schema_version"] = "1.3"
    record["unit"] = "percent"  # a new optional field
    record["value"] = 12  # an integer where a float was: a wider type
    decoded = decode(json.dumps(record))
    assert decoded.value == 12.0
    assert decoded.extras == {"unit": "percent"}
    assert json.loads(encode(decoded))["unit"] == "percent"


@pytest.mark.parametrize(
    ("change", "reason", "names"),
    [
        ({"schema_version": "2.0"}, "incompatible_schema", "2.0"),
        ({"schema_version": "one"}, "incompatible_schema", "MAJOR.MINOR"),
        ({"value": "12.5"}, "wrong_type", "'value'"),
        ({"ums_ts_": 1.7e12}, "wrong_type", "'ums_ts_'"),
        ({"tags": {"host": 1}}, "wrong_type", "'tags'"),
        ({"ums_op_": "x"}, "wrong_type", "'ums_op_'"),
        ({"value": None}, "wrong_type", "retraction"),
        # Integers beyond their column's range are refused, not stored as null.
        ({"ums_id_": 2**63}, "wrong_type", "'ums_id_' is 9223372036854775808, outside the signed 64-bit"),
        ({"ums_ts_": -(2**63) - 1}, "wrong_type", "'ums_ts_'"),
        ({"wave": 2**31}, "wrong_type", "'wave' is 2147483648, outside the signed 32-bit"),
        ({"collected_at": 2**64 - 1}, "wrong_type", "'collected_at'"),
    ],
)
def test_incompatible_changes_are_refused_naming_the_field(change: dict, reason: str, names: str) -> None:
    record = make_envelope().to_dict() | change
    with pytest.raises(EnvelopeError) as error:
        decode(json.dumps(record))
    assert error.value.reason == reason
    assert names in str(error.value)


def test_missing_required_field_is_named() -> None:
    record = make_envelope().to_dict()
    del record["point_key"]
    with pytest.raises(EnvelopeError, match="'point_key' is missing"):
        decode(json.dumps(record))


def test_not_json_is_refused() -> None:
    with pytest.raises(EnvelopeError) as error:
        decode(b"{not json")
    assert error.value.reason == "invalid_json"


def test_published_schema_is_current_and_validates_envelopes() -> None:
    assert json.loads(PUBLISHED.read_text()) == json_schema(), (
        "regenerate with `python -m rtdp_dagster.envelope.schema > docs/envelope.schema.json`"
    )
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.validate(json.loads(encode(make_envelope())))
    validator.validate(json.loads(encode(make_envelope(ums_op_="d", value=None))))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(json.loads(encode(make_envelope())) | {"schema_version": "2.0"})
