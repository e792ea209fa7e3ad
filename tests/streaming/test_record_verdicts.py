"""Python's verdict on rows the native path left: v1 as before, a v2 record judged once for all
of its points, a record refused as a whole said to be whole."""

from __future__ import annotations

import time

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.validation import PointRules
from rtdp_dagster.streaming import record_verdicts
from rtdp_dagster.streaming.record_verdicts import ACCEPTED, BatchVerdicts, record_verdict

from .v2_records import as_dict, broken_frames, compact, point, same_origin, with_tuple

NOW = int(time.time() * 1000)
RULES, KINDS = PointRules(), MetricKinds()


def record() -> dict:
    points = [point("test.verdicts", f"h{i}", NOW - 60_000 + i, float(i), version=i) for i in range(3)]
    return as_dict(same_origin(points, NOW - 1_000))


def test_a_bad_point_is_refused_alone() -> None:
    good = record()
    bad = with_tuple(good, 1, 0, [1, NOW - 59_999, "i", "0" * 32, 1.0])
    verdicts = [record_verdict(bad, NOW, RULES, KINDS, index=i, ums_frame=True) for i in range(3)]
    assert [v.reason for v in verdicts] == [None, "point_key_mismatch", None]
    assert not any(v.whole for v in verdicts)


def test_a_record_is_judged_once_for_all_its_points(monkeypatch) -> None:
    calls = []
    judge = record_verdicts.validate_batch
    monkeypatch.setattr(record_verdicts, "validate_batch", lambda *a, **k: calls.append(1) or judge(*a, **k))
    batches = BatchVerdicts(RULES, KINDS)
    payload = compact(record())
    assert [batches.point(payload, NOW, i, True) for i in range(3)] == [ACCEPTED] * 3
    assert len(calls) == 1


def test_a_broken_frame_is_refused_whole() -> None:
    for payload, reason in broken_frames(record()).values():
        verdict = record_verdict(payload, NOW, RULES, KINDS, index=0, ums_frame=False)
        assert (verdict.reason, verdict.whole) == (reason, True)


def test_a_frame_only_python_reads_is_refused_whole_not_half_read() -> None:
    verdict = record_verdict(compact(record()), NOW, RULES, KINDS, index=0, ums_frame=False)
    assert verdict.reason == "malformed_batch" and verdict.whole


def test_a_v1_record_gets_validate_payloads_verdict() -> None:
    verdict = record_verdict(b"{nope", NOW, RULES, KINDS)
    assert (verdict.reason, verdict.whole) == ("invalid_json", False)
    assert record_verdict(None, NOW, RULES, KINDS).reason == "empty_record"
