"""validate_batch: a structural defect rejects the record; otherwise each point gets its v1 verdict."""

import dataclasses

import orjson

from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.envelope.ums_batch import encode_batch
from rtdp_dagster.envelope.ums_batch_validation import validate_batch
from rtdp_dagster.envelope.validation import PointRules, Rejection, validate_payload

from .test_ums_batch import POINTS, T0

RULES = PointRules()
RECEIVED = T0 + 60_000


def test_valid_points_come_back_as_envelopes() -> None:
    verdicts = validate_batch(encode_batch(POINTS), RULES, received_ms=RECEIVED)
    assert isinstance(verdicts, list)
    envelopes = [item for item in verdicts if isinstance(item, Envelope)]
    assert len(envelopes) == len(verdicts)
    assert sorted(envelopes, key=lambda e: e.ums_id_) == sorted(POINTS, key=lambda e: e.ums_id_)


def test_each_point_gets_the_verdict_of_its_v1_record_and_bad_ones_stay_alone() -> None:
    # A point a day ahead of the receiver's clock, among valid ones.
    future = dataclasses.replace(POINTS[1], ums_ts_=T0 + 86_400_000)
    points = [POINTS[0], future, *POINTS[2:]]
    verdicts = validate_batch(encode_batch(points), RULES, received_ms=RECEIVED)
    assert isinstance(verdicts, list) and len(verdicts) == len(points)
    by_key = {
        (item.point_key, item.ums_id_): validate_payload(encode(item), RULES, received_ms=RECEIVED) for item in points
    }
    rejected = [verdict for verdict in verdicts if isinstance(verdict, Rejection)]
    assert len(rejected) == 1 and rejected[0] == by_key[(future.point_key, future.ums_id_)]
    assert sum(isinstance(verdict, Envelope) for verdict in verdicts) == len(points) - 1


def test_a_defective_tuple_is_rejected_alone() -> None:
    record = orjson.loads(encode_batch(POINTS))
    record["payload"][0]["tuples"][1][4] = "NaN"
    verdicts = validate_batch(orjson.dumps(record), RULES, received_ms=RECEIVED)
    assert isinstance(verdicts, list)
    assert [verdict.reason for verdict in verdicts if isinstance(verdict, Rejection)] == ["wrong_type"]
    assert isinstance(verdicts[1], Rejection) and "payload[0].tuples[1]" in verdicts[1].detail


def test_a_structural_defect_rejects_the_whole_record() -> None:
    verdict = validate_batch(orjson.dumps({"protocol": {"type": "data_increment_data", "version": "9.0"}}), RULES)
    assert isinstance(verdict, Rejection) and verdict.reason == "incompatible_schema"
    empty = validate_batch(b"", RULES)
    assert isinstance(empty, Rejection) and empty.reason == "empty_record"


def test_integers_beyond_their_columns_are_refused() -> None:
    record = orjson.loads(encode_batch(POINTS))
    record["payload"][0]["tuples"][0][0] = 2**63  # ums_id_ of the first point
    verdicts = validate_batch(orjson.dumps(record), RULES, received_ms=RECEIVED)
    assert isinstance(verdicts, list) and isinstance(verdicts[0], Rejection)
    assert verdicts[0].reason == "wrong_type" and "'ums_id_' of payload[0].tuples[0]" in verdicts[0].detail
    assert all(isinstance(verdict, Envelope) for verdict in verdicts[1:])
    record = orjson.loads(encode_batch(POINTS))
    record["batch"]["wave"] = 2**31
    refused = validate_batch(orjson.dumps(record), RULES, received_ms=RECEIVED)
    assert isinstance(refused, Rejection) and refused.reason == "wrong_type" and "'wave' of batch" in refused.detail
