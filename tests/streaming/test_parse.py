"""The stream's two validation paths give Python's verdict on every record: collector-encoded
records are accepted natively (no Python), anything odd goes through ``validate_payload``."""

import dataclasses
import datetime as dt
import json

import pytest
from pyspark.sql import types as T

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.envelope.validation import PointRules, validate_payload
from rtdp_dagster.streaming.parse import checked_records, verdicts
from tests.streaming.test_stream_mix import envelope

NOW = 1_790_000_000_000
KAFKA_SCHEMA = T.StructType([
    T.StructField("topic", T.StringType()), T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()), T.StructField("timestamp", T.TimestampType()),
    T.StructField("key", T.BinaryType()), T.StructField("value", T.BinaryType()),
])  # fmt: skip


def _good(**changes) -> dict:
    return json.loads(encode(envelope("site01-host0001", NOW - 5_000, 1.5, version=7))) | changes


def _json(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


CANONICAL = {
    "insert": encode(envelope("site01-host0001", NOW - 5_000, 1.5, version=7)),
    "correction": encode(envelope("site01-host0002", NOW - 4_000, 2.25, op="u", version=8)),
    "retraction": encode(envelope("site01-host0003", NOW - 3_000, None, op="d", version=9)),
    "no tags": encode(dataclasses.replace(envelope("h", NOW - 1_000, 3.0, version=1), tags={})),
    "minor version": _json(_good(schema_version="1.7")),
}
ODD = {
    # valid for Python, but not canonical: Python's verdict (accepted) all the same
    "fields reordered": _json(dict(reversed(list(_good().items())))),
    "spaces": json.dumps(_good()).encode(),
    "integer value": _json(_good(value=2)),
    "extra field": _json(_good(note="from 1.1")),
    "repeated tag key": _json(_good())[:-1].replace(b'"tags":{', b'"tags":{"host":"a",') + b"}",
    "tiny value": _json(_good(value=1e-7)),
    # invalid
    "metric a number": _json(_good(metric=42)),
    "tag value a number": _json(_good(tags={"host": 5})),
    "wave a string": _json(_good(wave="1")),
    "metric with a newline": _json(_good(metric="sys.cpu\n")),
    "NaN token": _json(_good())[:-1].replace(b'"value":1.5', b'"value":NaN') + b"}",
    "Infinity token": _json(_good())[:-1].replace(b'"value":1.5', b'"value":Infinity') + b"}",
    "value missing on insert": _json(_good(value=None)),
    "future": _json(_good(ums_ts_=NOW + 86_400_000, collected_at=NOW)),
    "too old": _json(_good(ums_ts_=5)),
    "percent above 100": _json(_good(metric="sys.cpu.util", value=140.0)),
    "major version 2": _json(_good(schema_version="2.0")),
    "bad op": _json(_good(ums_op_="x")),
    "too many tags": _json(_good(tags={f"k{i}": "v" for i in range(20)})),
    "array": b"[1,2]",
    "not json": b"{nope",
    "not utf-8": b'{"metric":"\xff"}',
    "empty": b"",
    "tombstone": None,
}


@pytest.fixture(scope="module")
def judged(spark) -> dict[str, tuple[bool, str | None]]:
    records = {**CANONICAL, **ODD}
    received = dt.datetime(2026, 11, 1)
    rows = [("points", 0, offset, received, b"k", value) for offset, value in enumerate(records.values())]
    kafka = spark.createDataFrame(rows, KAFKA_SCHEMA)
    checked = checked_records(kafka, PointRules(), MetricKinds()).persist()
    with verdicts(checked, PointRules(), MetricKinds()) as frame:
        reasons = {row["kafka_offset"]: row["reason"] for row in frame.select("kafka_offset", "reason").collect()}
    native = {
        row["kafka_offset"]: row["native_valid"] for row in checked.select("kafka_offset", "native_valid").collect()
    }
    checked.unpersist()
    return {name: (native[offset], reasons[offset]) for offset, name in enumerate(records)}


def _python(payload: bytes | None) -> str | None:
    verdict = validate_payload(payload, PointRules(), MetricKinds())
    return None if isinstance(verdict, Envelope) else verdict.reason


@pytest.mark.parametrize("name", list(CANONICAL))
def test_collector_records_are_accepted_natively(judged, name: str) -> None:
    assert judged[name] == (True, None)
    assert _python(CANONICAL[name]) is None


@pytest.mark.parametrize("name", list(ODD))
def test_every_other_record_gets_pythons_verdict(judged, name: str) -> None:
    native, reason = judged[name]
    assert not native, "only canonical records may skip Python"
    assert reason == _python(ODD[name])


def test_the_mix_has_both_verdicts(judged) -> None:
    reasons = {reason for _, reason in judged.values()}
    assert None in reasons and {"invalid_json", "wrong_type", "value_out_of_range", "empty_record"} <= reasons
