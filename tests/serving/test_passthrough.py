"""VictoriaMetrics' answers passed through as bytes give the response the general path gives (the same
points, tags and order), and anything the passthrough does not handle is left to the general path."""

from __future__ import annotations

import orjson
import pytest

from rtdp_dagster.serving import passthrough
from rtdp_dagster.serving.aggregate import Series, aggregate
from rtdp_dagster.serving.encode import encode_results
from rtdp_dagster.serving.execute import format_result
from rtdp_dagster.serving.fetch import Source
from rtdp_dagster.serving.model import QueryRequest
from rtdp_dagster.serving.parse import parse_json_body
from rtdp_dagster.serving.partials import series_tags
from rtdp_dagster.serving.plan import Segment
from rtdp_dagster.serving.vm import fast_matrix

START = 1_700_000_040_000  # a whole minute
MINUTE = 60_000


def _answer(result: list[dict]) -> bytes:
    return orjson.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}, "stats": {}})


def _series(host: str, values: list[str], **labels: str) -> dict:
    pairs = [[(START + index * MINUTE) // 1000, value] for index, value in enumerate(values)]
    return {"metric": {"host": host, **labels}, "values": pairs}


def _request(aggregator: str = "sum", tags: dict | None = None, **options) -> QueryRequest:
    query = {
        "metric": "m",
        "aggregator": aggregator,
        "downsample": "1m-avg",
        "tags": {"host": "*"} if tags is None else tags,
    }
    body = {"start": START, "end": START + 10 * MINUTE, "queries": [query], **options}
    arrays = bool(body.pop("arrays", False))
    return parse_json_body(orjson.dumps(body), START + 20 * MINUTE, 10**12, arrays=arrays)


def _call(level: str | None = None) -> passthrough.Call:
    segment = Segment("history" if level else "realtime", START, START + 10 * MINUTE, level)
    return passthrough.Call(segment, Source(None, "m", ()), "expr", START, START + 9 * MINUTE, MINUTE)  # type: ignore[arg-type]


def _general(request: QueryRequest, answers: list[bytes]) -> bytes:
    """What the general path makes of the same answers (one segment: each series as VictoriaMetrics gave it)."""
    query = request.queries[0]
    series = []
    for answer in answers:
        for raw in fast_matrix(answer) or []:
            tags = series_tags(raw.labels)
            if all(item.matches(tags.get(item.tagk)) for item in query.filters):
                series.append(Series(tags, raw.timestamps, raw.values))
    groups = aggregate(series, query.aggregator, query.group_by)
    return encode_results([format_result(query, group, request) for group in groups], request.arrays)


@pytest.mark.parametrize(
    "options", [{}, {"msResolution": True}, {"arrays": True}, {"msResolution": True, "arrays": True, "showQuery": True}]
)
@pytest.mark.parametrize("aggregator", ["sum", "none", "max"])
def test_a_passed_through_answer_is_what_the_general_path_answers(aggregator: str, options: dict) -> None:
    answer = _answer(
        [
            _series("b", ["1.5", "2", "-3e-07", "12345678.901234"]),
            _series("a", ["0.1", "0.30000000000000004"], site="x"),
            _series("c", ["7"]),
        ]
    )
    request = _request(aggregator, **options)
    encoded = passthrough.results(request.queries[0], request, [_call()], [answer])
    assert encoded is not None
    assert (encoded.count, encoded.points) == (3, 7)
    mine = orjson.loads(encode_results([encoded], request.arrays))
    assert mine == orjson.loads(_general(request, [answer]))


@pytest.mark.parametrize("options", [{}, {"msResolution": True}, {"arrays": True}, {"showQuery": True}])
def test_tags_with_what_the_rewriting_changes_come_through(options: dict) -> None:
    """Quotes, commas, brackets and the letters of NaN and Inf in tags and metric are not points."""
    answer = _answer([_series("NaN", ["1", "2"], site='a,"b"],[c'), _series("Inf", ["3"], site="n")])
    request = _request("none", **options)
    encoded = passthrough.results(request.queries[0], request, [_call()], [answer])
    assert encoded is not None and (encoded.count, encoded.points) == (2, 3)
    assert orjson.loads(encode_results([encoded], request.arrays)) == orjson.loads(_general(request, [answer]))


def test_no_series_is_an_empty_response() -> None:
    request = _request()
    encoded = passthrough.results(request.queries[0], request, [_call()], [_answer([])])
    assert encoded is not None and orjson.loads(encode_results([encoded, encoded], arrays=False)) == []


def test_segments_in_time_order_are_joined_per_series() -> None:
    request = _request()
    first = _answer([_series("a", ["1", "2"]), _series("b", ["5"])])
    later = _series("a", ["3"])
    later["values"] = [[(START + 5 * MINUTE) // 1000, "3"]]
    second = _answer([later])
    encoded = passthrough.results(request.queries[0], request, [_call("1h"), _call()], [first, second])
    assert encoded is not None
    result = orjson.loads(encode_results([encoded], arrays=False))
    start_s = START // 1000
    assert result[0]["dps"] == {str(start_s): 1, str(start_s + 60): 2, str(start_s + 300): 3}
    assert result[1]["dps"] == {str(start_s): 5}


@pytest.mark.parametrize("options", [{"msResolution": True}, {"arrays": True}, {"msResolution": True, "arrays": True}])
def test_segments_are_joined_in_every_format(options: dict) -> None:
    request = _request("none", **options)
    first = _answer([_series("a", ["1", "2"]), _series("b", ["5"])])
    later = _series("a", ["3"])
    later["values"] = [[(START + 5 * MINUTE) // 1000, "3"]]
    second = _answer([later])
    encoded = passthrough.results(request.queries[0], request, [_call("1h"), _call()], [first, second])
    assert encoded is not None and (encoded.count, encoded.points) == (2, 4)
    general = orjson.loads(_general(request, [first]))
    mine = orjson.loads(encode_results([encoded], request.arrays))
    assert mine[1] == general[1]  # b, from the first segment only
    unit = 1 if request.ms_resolution else 1000
    stamps = [point[0] for point in mine[0]["dps"]] if request.arrays else [int(ts) for ts in mine[0]["dps"]]
    assert stamps == [START // unit, (START + MINUTE) // unit, (START + 5 * MINUTE) // unit]


def test_the_same_series_again_carry_their_new_points() -> None:
    request = _request()
    before = passthrough.results(request.queries[0], request, [_call()], [_answer([_series("a", ["1", "2"])])])
    after = passthrough.results(request.queries[0], request, [_call()], [_answer([_series("a", ["7", "8", "9"])])])
    assert before is not None and after is not None
    start_s = START // 1000
    assert orjson.loads(encode_results([after], arrays=False))[0]["dps"] == {
        str(start_s): 7,
        str(start_s + 60): 8,
        str(start_s + 120): 9,
    }


def test_history_rows_of_another_aggregate_and_refused_tags_are_left_out() -> None:
    request = _request(tags={"host": "a|b"})
    answer = _answer([_series("a", ["1"], agg="avg"), _series("b", ["2"], agg="count"), _series("c", ["3"])])
    encoded = passthrough.results(request.queries[0], request, [_call("1d")], [answer])
    assert encoded is not None
    assert [item["tags"] for item in orjson.loads(encode_results([encoded], arrays=False))] == [{"host": "a"}]


@pytest.mark.parametrize(
    "answer",
    [
        _answer([_series("a", ["NaN"])]),
        _answer([_series("a", ["+Inf"])]),
        _answer([_series("a", ["1"]), _series("a", ["2"], rollup="1d")]),  # one tag set twice
        b'{"status":"error","error":"x"}',
    ],
)
def test_what_the_passthrough_does_not_handle_goes_to_the_general_path(answer: bytes) -> None:
    request = _request()
    assert passthrough.results(request.queries[0], request, [_call()], [answer]) is None


def test_series_sharing_a_group_go_to_the_general_path() -> None:
    request = _request(tags={"site": "*"})
    answer = _answer([_series("a", ["1"], site="x"), _series("b", ["2"], site="x")])
    assert passthrough.results(request.queries[0], request, [_call()], [answer]) is None
