"""The array encoder writes what orjson writes for the same objects; the fast matrix reader reads what
the general JSON path reads, and steps aside for anything it does not handle."""

from __future__ import annotations

import numpy as np
import orjson

from rtdp_dagster.serving.encode import QueryResult, encode_results
from rtdp_dagster.serving.vm import _matrix, fast_matrix


def test_dps_as_object_or_arrays_match_the_object_encoding():
    timestamps = np.array([1_700_000_000, 1_700_000_060, 1_700_000_120], dtype=np.int64)
    values = np.array([1.5, np.nan, 1e-7])
    head = {"metric": "m", "tags": {"host": 'a"b'}, "aggregateTags": ["x"]}
    results = [QueryResult(head, timestamps, values, {"index": 0}), QueryResult(head, timestamps[:0], values[:0])]
    pairs = list(zip(timestamps.tolist(), [1.5, None, 1e-7], strict=True))
    expected = [{**head, "dps": {str(ts): value for ts, value in pairs}, "query": {"index": 0}}, {**head, "dps": {}}]
    assert encode_results(results, arrays=False) == orjson.dumps(expected)
    expected[0]["dps"], expected[1]["dps"] = [list(pair) for pair in pairs], []
    assert encode_results(results, arrays=True) == orjson.dumps(expected)


def test_fast_matrix_reads_what_the_json_path_reads():
    tricky = {"__name__": "m", "host": 'x"},"values":[[1,"2"]]'}  # escaped in JSON: never structure
    answer = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": tricky, "values": [[1700000000, "1.5"], [1700000060.5, "-2e-07"]]},
                {"metric": {"host": "[]"}, "values": [[1700000000, "3"]]},
            ],
        },
    }
    content = orjson.dumps(answer)
    fast, general = fast_matrix(content), _matrix(answer["data"]["result"])
    assert fast is not None and len(fast) == len(general) == 2
    for mine, theirs in zip(fast, general, strict=True):
        assert mine.labels == theirs.labels
        assert np.array_equal(mine.timestamps, theirs.timestamps) and np.array_equal(mine.values, theirs.values)


def test_fast_matrix_steps_aside_for_nan_and_other_shapes():
    nan = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "NaN"]]}]}}
    assert fast_matrix(orjson.dumps(nan)) is None
    assert fast_matrix(b'{"status":"error","error":"boom"}') is None
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert fast_matrix(orjson.dumps(empty)) == []
