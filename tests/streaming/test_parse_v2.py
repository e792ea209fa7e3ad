"""v2 records (UMS batches) through the stream's parsing: one row per point, good points natively,
a bad point refused alone at its index, a broken frame refused once and whole; every verdict the
one Python's ``validate_batch`` gives."""

from __future__ import annotations

import time
import uuid

import pytest

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.ums_batch_validation import validate_batch
from rtdp_dagster.envelope.validation import PointRules, Rejection
from rtdp_dagster.streaming.parse import checked_records, parsed_records, verdicts
from tests.streaming.test_parse import kafka_frame
from tests.streaming.test_stream_mix import encode
from tests.streaming.test_stream_mix import envelope as v1_point

from .v2_records import DAY_MS, as_dict, broken_frames, compact, point, same_origin, with_tuple

NOW = int(time.time() * 1000)
METRIC = f"test.parse.v2{uuid.uuid4().hex[:8]}"


def batch_points(start: int) -> list:
    points = [
        point(METRIC, f"h{i}", start + step * 1000, float(step + i), version=start + step)
        for step in range(3)
        for i in range(2)
    ]
    points.append(point(METRIC, "h0", start, None, version=start + 10, op="d"))
    return same_origin(points, start + 5_000)


def judge(spark, values: list) -> list[tuple[int, int | None, bool, str | None]]:
    """(offset, index, accepted natively, reason) of every row, in Kafka and record order."""
    checked = checked_records(
        parsed_records(kafka_frame(spark, values), PointRules(), MetricKinds()), PointRules(), receive_ms=NOW
    )
    checked = checked.persist()
    try:
        with verdicts(checked, PointRules(), MetricKinds()) as frame:
            rows = frame.select("kafka_offset", "kafka_index", "native_valid", "reason").collect()
    finally:
        checked.unpersist()
    ordered = sorted(rows, key=lambda r: (r["kafka_offset"], -1 if r["kafka_index"] is None else r["kafka_index"]))
    return [(r["kafka_offset"], r["kafka_index"], r["native_valid"], r["reason"]) for r in ordered]


def python_reasons(payload: bytes) -> list[str | None] | str:
    verdict = validate_batch(payload, PointRules(), MetricKinds(), NOW)
    if isinstance(verdict, Rejection):
        return verdict.reason
    return [None if not isinstance(item, Rejection) else item.reason for item in verdict]


def test_a_collector_batch_is_accepted_natively_point_by_point(spark) -> None:
    record = as_dict(batch_points(NOW - 60_000))
    v1 = encode(v1_point("site01-host0001", NOW - 5_000, 1.5, version=7))
    rows = judge(spark, [compact(record), v1])
    assert rows == [(0, index, True, None) for index in range(7)] + [(1, 0, True, None)]


BAD_TUPLES = {
    "value a string": (lambda t: [*t[:4], str(t[4])], "wrong_type"),
    "too few elements": (lambda t: t[:4], "malformed_batch"),
    "too many elements": (lambda t: [*t, 1], "malformed_batch"),
    "forged point_key": (lambda t: [t[0], t[1], t[2], "0" * 32, t[4]], "point_key_mismatch"),
    "far in the future": (lambda t: [t[0], t[1] + 30 * DAY_MS, *t[2:]], "timestamp_in_future"),
    "id a float": (lambda t: [t[0] + 0.5, *t[1:]], "wrong_type"),
    # Split at its commas this tuple would read as a retraction with a valid key.
    "op holding a comma": (lambda t: [t[0], t[1], f"d,{t[3]}", "x", 1.0], "wrong_type"),
}


@pytest.mark.parametrize("name", list(BAD_TUPLES))
def test_a_bad_point_is_refused_alone_at_its_index(spark, name: str) -> None:
    record = as_dict(batch_points(NOW - 60_000))
    change, reason = BAD_TUPLES[name]
    bad = with_tuple(record, 1, 1, change(record["payload"][1]["tuples"][1]))  # index 5: group 0 holds 4
    rows = judge(spark, [bad])
    assert [(index, r) for _, index, _, r in rows] == [(i, reason if i == 5 else None) for i in range(7)]
    assert [r for *_, r in rows] == python_reasons(bad)
    assert all(native for _, index, native, _ in rows if index != 5)


@pytest.mark.parametrize("name", list(broken_frames(as_dict(batch_points(NOW)))))
def test_a_broken_frame_is_refused_once_and_whole(spark, name: str) -> None:
    payload, reason = broken_frames(as_dict(batch_points(NOW - 60_000)))[name]
    assert judge(spark, [payload]) == [(0, None, False, reason)]
    if reason != "oversize_batch":
        assert python_reasons(payload) == reason


def test_duplicate_tuples_are_two_points_as_two_v1_records_would_be(spark) -> None:
    record = as_dict(batch_points(NOW - 60_000))
    record["payload"][0]["tuples"].append(record["payload"][0]["tuples"][0])
    record["batch"]["points"] += 1
    rows = judge(spark, [compact(record)])
    assert len(rows) == 8 and all(native and reason is None for *_, native, reason in rows)


def test_an_unusual_but_valid_batch_gets_pythons_verdict(spark) -> None:
    record = as_dict(batch_points(NOW - 60_000))
    spaced = compact(record).replace(b",", b", ")
    newer = as_dict(batch_points(NOW - 60_000))
    newer["protocol"]["version"] = "2.3"
    newer["schema"]["fields"].append({"name": "unit", "type": "string", "nullable": True})
    for group in newer["payload"]:
        group["tuples"] = [[*t, "pct"] for t in group["tuples"]]
    rows = judge(spark, [spaced, compact(newer)])
    assert [(offset, index, reason) for offset, index, _, reason in rows] == [
        (offset, index, None) for offset in (0, 1) for index in range(7)
    ]
    # The JVM reads JSON, not its layout: the spaced record is the collectors' record. A newer minor's
    # appended fields are kept by Python only (the point's extras), so its points go to Python.
    assert [native for offset, _, native, _ in rows] == [True] * 7 + [False] * 7


def _json_edge_cases(record: dict) -> dict[str, bytes]:
    """Records a JSON reader other than Python's could read otherwise than Python does."""
    text = compact(record)
    host = b'"host":"h0"'
    return {
        # Python keeps a repeated key's last value: the series is the same, or another one.
        "repeated tag, last is right": text.replace(host, b'"host":"zz",' + host, 1),
        "repeated tag, last is wrong": text.replace(host, host + b',"host":"zz"', 1),
        # Python refuses the whole record for these; Jackson alone would read them.
        "lone surrogate in source": text.replace(b'"source":"v2test"', b'"source":"v2\\ud800test"'),
        "number too large for a double": with_tuple(record, 1, 0, [*record["payload"][1]["tuples"][0][:4], 0]).replace(
            b",0]", b",1e400]", 1
        ),
        # Python reads an integer beyond 64 bits as a float: a valid value, an invalid id.
        "value beyond 64 bits": with_tuple(record, 1, 0, [*record["payload"][1]["tuples"][0][:4], 2**64]),
        "id beyond 63 bits": with_tuple(record, 1, 0, [2**63, *record["payload"][1]["tuples"][0][1:]]),
        "layout and escapes": text.replace(b",", b" ,\n\t").replace(b'"v2test"', b'"v2\\u0074est"'),
    }


@pytest.mark.parametrize("name", list(_json_edge_cases(as_dict(batch_points(NOW)))))
def test_json_the_jvm_could_read_otherwise_gets_pythons_verdict(spark, name: str) -> None:
    payload = _json_edge_cases(as_dict(batch_points(NOW - 60_000)))[name]
    rows = judge(spark, [payload])
    expected = python_reasons(payload)
    if isinstance(expected, str):  # refused whole: one row, no index
        assert rows == [(0, None, False, expected)]
    else:
        assert [reason for *_, reason in rows] == expected
        # Whatever the JVM accepts, Python accepts.
        assert all(reason is None for _, _, native, reason in rows if native)
