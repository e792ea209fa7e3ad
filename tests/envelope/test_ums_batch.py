"""Envelope v2 (UMS batch): encoding, decoding, evolution and malformed records."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import SCHEMA_VERSION, Envelope, EnvelopeError, encode
from rtdp_dagster.envelope.ums_batch import FIELD_NAMES, decode_batch, encode_batch
from rtdp_dagster.envelope.ums_batch_schema import json_schema

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "envelope-v2.schema.json"
T0 = 1_700_000_000_000


def point(metric: str, tags: dict[str, str], ts: int, value: float | None = 1.5, op: str = "i", **kw: Any) -> Envelope:
    fields: dict[str, Any] = {
        "namespace": "synthetic.local.fleet.metrics.v1.0.0",
        "metric": metric,
        "tags": tags,
        "value": value,
        "ums_ts_": ts,
        "point_key": point_key(metric, tags, ts),
        "ums_id_": ts * 1000 + 7,
        "ums_op_": op,
        "wave": 2,
        "source": "fleet",
        "collected_at": T0 + 60_000,
    }
    fields.update(kw)
    return Envelope(**fields)


CPU = {"host": "web-01", "site": "par"}
MEM = {"host": "web-02"}
POINTS = [
    point("sys.cpu", CPU, T0, 12.5),
    point("sys.mem", MEM, T0, 2048.0),
    point("sys.cpu", {"site": "par", "host": "web-01"}, T0 + 1000, 13.0),  # same series, tags in another order
    point("sys.cpu", CPU, T0 + 2000, None, op="d"),
    point("sys.mem", MEM, T0 + 1000, 4096.0, op="u", ums_id_=10**18),
]


def by_series(points: list[Envelope]) -> dict[str, list[Envelope]]:
    grouped: dict[str, list[Envelope]] = {}
    for item in points:
        grouped.setdefault(item.series_key, []).append(item)
    return grouped


def test_roundtrip_keeps_every_point_and_each_series_order() -> None:
    decoded = decode_batch(encode_batch(POINTS))
    assert len(decoded) == len(POINTS)
    assert by_series(decoded) == by_series(POINTS)
    assert all(item.schema_version == SCHEMA_VERSION and item.extras == {} for item in decoded)
    # The same points as their v1 records decode to: everything after parsing is shared.
    assert sorted(decoded, key=lambda e: e.point_key) == sorted(POINTS, key=lambda e: e.point_key)


def test_series_identity_is_written_once_per_series_and_tuples_follow_the_field_list() -> None:
    raw = encode_batch(POINTS)
    record = orjson.loads(raw)
    assert record["protocol"] == {"type": "data_increment_data", "version": "2.0"}
    assert [field["name"] for field in record["schema"]["fields"]] == list(FIELD_NAMES)
    assert FIELD_NAMES[:3] == ("ums_id_", "ums_ts_", "ums_op_")
    assert record["batch"] == {"source": "fleet", "wave": 2, "collected_at": T0 + 60_000, "points": 5}
    assert [group["metric"] for group in record["payload"]] == ["sys.cpu", "sys.mem"]
    assert raw.count(b'"web-01"') == 1 and raw.count(b"synthetic.local.fleet") == 1
    cpu = record["payload"][0]
    assert cpu["tags"] == CPU and list(cpu["tags"]) == sorted(CPU)
    assert cpu["tuples"][0] == [T0 * 1000 + 7, T0, "i", point_key("sys.cpu", CPU, T0), 12.5]
    assert cpu["tuples"][2][2:] == ["d", point_key("sys.cpu", CPU, T0 + 2000), None]
    assert len(raw) < sum(len(encode(item)) for item in POINTS) * 0.7


def test_published_json_schema_is_generated_and_accepts_records() -> None:
    assert json.loads(PUBLISHED.read_text()) == json_schema(), (
        "regenerate: python -m rtdp_dagster.envelope.ums_batch_schema > docs/envelope-v2.schema.json"
    )
    validator = jsonschema.Draft202012Validator(json_schema())
    record = orjson.loads(encode_batch(POINTS))
    validator.validate(record)
    record["payload"][0]["tuples"][0][2] = "x"
    assert not validator.is_valid(record)
    record = orjson.loads(encode_batch(POINTS))
    record["schema"]["fields"][0], record["schema"]["fields"][1] = (
        record["schema"]["fields"][1],
        record["schema"]["fields"][0],
    )
    assert not validator.is_valid(record)


def test_a_newer_minor_version_decodes_and_keeps_appended_fields() -> None:
    record = orjson.loads(encode_batch(POINTS[:2]))
    record["protocol"]["version"] = "2.3"
    record["protocol"]["compression_hint"] = "none"
    record["schema"]["fields"].append({"name": "quality", "type": "string", "nullable": True})
    for group in record["payload"]:
        group["unit"] = "percent"
        for values in group["tuples"]:
            values.append("good")
    decoded = decode_batch(orjson.dumps(record))
    assert [item.extras for item in decoded] == [{"quality": "good"}, {"quality": "good"}]
    assert decoded == POINTS[:2]
    jsonschema.Draft202012Validator(json_schema()).validate(record)


def test_integer_values_widen_to_floats() -> None:
    record = orjson.loads(encode_batch(POINTS[:1]))
    record["payload"][0]["tuples"][0][4] = 12
    (decoded,) = decode_batch(orjson.dumps(record))
    assert decoded.value == 12.0 and isinstance(decoded.value, float)


def mutate(change: Callable[[dict], object]) -> bytes:
    record = orjson.loads(encode_batch(POINTS))
    change(record)
    return orjson.dumps(record)


def _set(path: tuple[Any, ...], value: object) -> Callable[[dict], None]:
    def change(record: dict) -> None:
        node = record
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("payload", "reason", "names"),
    [
        (b'{"protocol": {"type"', "invalid_json", ""),
        (b"[1, 2]", "not_an_object", "JSON object"),
        (encode(POINTS[0]), "incompatible_schema", "v1 point envelope"),
        (mutate(lambda r: r.pop("schema")), "missing_field", "'schema'"),
        (mutate(_set(("protocol", "type"), "data_initial_data")), "incompatible_schema", "protocol.type"),
        (mutate(_set(("protocol", "version"), "3.0")), "incompatible_schema", "3.0"),
        (mutate(_set(("protocol", "version"), "2")), "incompatible_schema", "MAJOR.MINOR"),
        (mutate(lambda r: r["schema"]["fields"].reverse()), "incompatible_schema", "schema.fields[0]"),
        (mutate(lambda r: r["schema"]["fields"].pop()), "incompatible_schema", "at least"),
        (mutate(_set(("schema", "namespace"), 7)), "wrong_type", "'namespace'"),
        (mutate(_set(("batch", "wave"), True)), "wrong_type", "'wave'"),
        (mutate(_set(("batch", "points"), 4)), "malformed_batch", "batch.points says 4"),
        (mutate(_set(("payload",), [])), "malformed_batch", "no series group"),
        (mutate(lambda r: r["payload"][1].pop("tags")), "missing_field", "payload[1].'tags'"),
        (mutate(_set(("payload", 0, "tags"), {"host": 1})), "wrong_type", "tags"),
        (mutate(_set(("payload", 0, "tuples", 1), [1, 2, "i", "k"])), "malformed_batch", "payload[0].tuples[1]"),
        (mutate(_set(("payload", 0, "tuples", 1, 1), "1700000000000")), "wrong_type", "'ums_ts_' of payload[0]"),
        (mutate(_set(("payload", 1, "tuples", 0, 0), False)), "wrong_type", "'ums_id_' of payload[1].tuples[0]"),
        (mutate(_set(("payload", 0, "tuples", 0, 2), "x")), "wrong_type", "'ums_op_'"),
        (mutate(_set(("payload", 0, "tuples", 0, 4), None)), "wrong_type", "only for a retraction"),
        (mutate(_set(("payload", 0, "tuples", 0, 4), "12.5")), "wrong_type", "'value'"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(payload: bytes, reason: str, names: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode_batch(payload)
    assert caught.value.reason == reason
    assert names in caught.value.detail


def test_encode_refuses_points_of_different_origins() -> None:
    with pytest.raises(ValueError, match="origin"):
        encode_batch([POINTS[0], point("sys.cpu", CPU, T0, wave=3)])
    with pytest.raises(ValueError, match="at least one point"):
        encode_batch([])
