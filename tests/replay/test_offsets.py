"""Pure parts of the replay: time parsing, topic selection, Spark's offset options, the command line."""

import json

import pytest

from rtdp_dagster.cli import build_parser, main
from rtdp_dagster.replay.offsets import OffsetRange, ReplayError, parse_instant, spark_offsets, topics_to_replay


def test_instants_are_epoch_ms_or_iso_times_in_utc() -> None:
    assert parse_instant("1790000000123") == 1_790_000_000_123
    assert parse_instant("2026-10-05T12:00:00") == parse_instant("2026-10-05T12:00:00Z") == 1_791_201_600_000
    assert parse_instant("2026-10-05T14:00:00+02:00") == 1_791_201_600_000
    with pytest.raises(ReplayError, match="neither epoch milliseconds nor an ISO-8601 time"):
        parse_instant("yesterday")


def test_topics_default_to_the_stream_pattern_and_must_exist() -> None:
    available = {"rtdp.points.v1", "rtdp.points.v2", "rtdp.deadletter", "rtdp.smoke"}
    assert topics_to_replay(available, [], r"rtdp\.points\..*") == ["rtdp.points.v1", "rtdp.points.v2"]
    assert topics_to_replay(available, ["rtdp.points.v2"], r"rtdp\.points\..*") == ["rtdp.points.v2"]
    with pytest.raises(ReplayError, match="unknown topic"):
        topics_to_replay(available, ["rtdp.points.v9"], r"rtdp\.points\..*")


def test_spark_reads_exactly_the_offset_ranges() -> None:
    options = spark_offsets([OffsetRange("a", 0, 5, 9), OffsetRange("a", 2, 0, 3), OffsetRange("b", 1, 7, 8)])
    assert json.loads(options["assign"]) == {"a": [0, 2], "b": [1]}
    assert json.loads(options["startingOffsets"]) == {"a": {"0": 5, "2": 0}, "b": {"1": 7}}
    assert json.loads(options["endingOffsets"]) == {"a": {"0": 9, "2": 3}, "b": {"1": 8}}


def test_replay_command_has_help_and_refuses_a_bad_time_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["replay", "--help"])
    assert exit_info.value.code == 0 and "--from START" in capsys.readouterr().out
    assert main(["replay", "--from", "soon", "--to", "1"]) == 1
    assert capsys.readouterr().err.strip() == "rtdp: replay: 'soon' is neither epoch milliseconds nor an ISO-8601 time"
