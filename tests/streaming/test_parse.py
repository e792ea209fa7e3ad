"""The stream's two validation paths give Python's verdict on every record: collector-encoded
records are accepted natively (no Python), anything odd goes through ``validate_payload``.
Both judge the future by a clock the producer does not control and verify the point_key."""

import dataclasses
import datetime as dt
import json
import time

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.envelope.validation import PointRules, validate_payload
from rtdp_dagster.streaming.clock import LOG_APPEND_TIME
from rtdp_dagster.streaming.parse import checked_records, parsed_records, verdicts
from tests.streaming.test_stream_mix import METRIC, envelope

NOW = int(time.time() * 1000)
DAY_MS = 86_400_000
CREATE_TIME = 0
KAFKA_SCHEMA = T.StructType(
    [
        T.StructField("topic", T.StringType()),
        T.StructField("partition", T.IntegerType()),
        T.StructField("offset", T.LongType()),
        T.StructField("timestamp", T.TimestampType()),
        T.StructField("timestampType", T.IntegerType()),
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
    ]
)


def kafka_frame(spark, values: list, timestamp_ms: int = NOW, timestamp_type: int = LOG_APPEND_TIME) -> DataFrame:
    """Records as Spark's Kafka source gives them, at offsets 0.. of one partition."""
    at = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    rows = [("points", 0, offset, at, timestamp_type, b"k", value) for offset, value in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def judge(spark, kafka: DataFrame, receive_ms: int = NOW) -> list[tuple[bool, str | None]]:
    """(accepted natively, reason) of each record, by offset."""
    checked = checked_records(
        parsed_records(kafka, PointRules(), MetricKinds()), PointRules(), receive_ms=receive_ms
    ).persist()
    try:
        with verdicts(checked, PointRules(), MetricKinds()) as frame:
            rows = frame.select("kafka_offset", "native_valid", "reason").collect()
    finally:
        checked.unpersist()
    return [(row["native_valid"], row["reason"]) for row in sorted(rows, key=lambda row: row["kafka_offset"])]


def _good(**changes) -> dict:
    """A collector's record with changes; its point_key follows metric, tags and ums_ts_ unless given."""
    record = json.loads(encode(envelope("site01-host0001", NOW - 5_000, 1.5, version=7))) | changes
    if "point_key" not in changes and isinstance(record["metric"], str) and isinstance(record["ums_ts_"], int):
        tags = record["tags"] if isinstance(record["tags"], dict) else {}
        if all(isinstance(value, str) for value in tags.values()):
            record["point_key"] = point_key(record["metric"], tags, record["ums_ts_"])
    return record


def _json(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


CANONICAL = {
    "insert": encode(envelope("site01-host0001", NOW - 5_000, 1.5, version=7)),
    "correction": encode(envelope("site01-host0002", NOW - 4_000, 2.25, op="u", version=8)),
    "retraction": encode(envelope("site01-host0003", NOW - 3_000, None, op="d", version=9)),
    "no tags": encode(
        dataclasses.replace(
            envelope("h", NOW - 1_000, 3.0, version=1), tags={}, point_key=point_key(METRIC, {}, NOW - 1_000)
        )
    ),
    "minor version": _json(_good(schema_version="1.7")),
    "tags in another order": _json(_good(tags={"site": "site01", "host": "h", "app": "web"})),
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
    "future": _json(_good(ums_ts_=NOW + DAY_MS, collected_at=NOW)),
    # A producer's clock a month ahead: its collected_at says "now" too, and is not believed.
    "future by its own clock": _json(_good(ums_ts_=NOW + 30 * DAY_MS, collected_at=NOW + 30 * DAY_MS)),
    "forged point_key": _json(_good(point_key="0" * 32)),
    "point_key of another time": _json(_good(point_key=point_key(_good()["metric"], {"host": "site01-host0001"}, 1))),
    "point_key of another series": _json(_good(tags={"host": "other"}, point_key=_good()["point_key"])),
    "point_key upper case": _json(_good(point_key=_good()["point_key"].upper())),
    "spaces and a forged point_key": json.dumps(_good(point_key="f" * 32)).encode(),
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
    return dict(zip(records, judge(spark, kafka_frame(spark, list(records.values()))), strict=True))


def _python(payload: bytes | None, received_ms: int = NOW) -> str | None:
    verdict = validate_payload(payload, PointRules(), MetricKinds(), received_ms)
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


def test_a_producer_clock_ahead_is_judged_by_the_receive_time(judged) -> None:
    assert judged["future by its own clock"] == (False, "timestamp_in_future")


@pytest.mark.parametrize("name", [name for name in ODD if "point_key" in name])
def test_a_point_key_that_is_not_the_hash_of_its_identity_is_refused(judged, name: str) -> None:
    assert judged[name] == (False, "point_key_mismatch")


def test_the_detail_of_a_key_mismatch_names_both_keys() -> None:
    forged = _good(point_key="0" * 32)
    verdict = validate_payload(_json(forged), PointRules(), MetricKinds(), NOW)
    assert not isinstance(verdict, Envelope)
    assert "0" * 32 in verdict.detail and _good()["point_key"] in verdict.detail


# A point an hour ahead of the receive time (more than max_future_s), a day ahead of its producer's clock.
AHEAD = {
    "canonical": encode(dataclasses.replace(envelope("h", NOW + 3_600_000, 1.0, version=1), collected_at=NOW)),
    "not canonical": json.dumps(json.loads(encode(envelope("h", NOW + 3_600_000, 1.0, version=1)))).encode(),
}


@pytest.mark.parametrize("name", list(AHEAD))
def test_the_broker_time_is_the_clock_where_the_broker_set_it(spark, name: str) -> None:
    record = AHEAD[name]
    # Appended by the broker two hours after this batch's receive time (a stream catching up): on time.
    appended_later = judge(spark, kafka_frame(spark, [record], NOW + 7_200_000), receive_ms=NOW)
    assert appended_later == [(name == "canonical", None)]
    assert _python(record, NOW + 7_200_000) is None
    # Appended at the receive time: an hour ahead of it.
    appended_now = judge(spark, kafka_frame(spark, [record], NOW), receive_ms=NOW + 7_200_000)
    assert appended_now == [(False, "timestamp_in_future")]


@pytest.mark.parametrize("name", list(AHEAD))
def test_a_producer_set_kafka_timestamp_is_not_the_clock(spark, name: str) -> None:
    record = AHEAD[name]
    # CreateTime: the producer claims the record was sent two hours from now; the receive time rules.
    claimed = kafka_frame(spark, [record], NOW + 7_200_000, timestamp_type=CREATE_TIME)
    assert judge(spark, claimed, receive_ms=NOW) == [(False, "timestamp_in_future")]
    assert judge(spark, claimed, receive_ms=NOW + 7_200_000) == [(name == "canonical", None)]
