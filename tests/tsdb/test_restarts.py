"""Telling a restarted TSDB from the start time it reports (pure logic)."""

from rtdp_dagster.streaming.realtime_state import AcknowledgedPuts
from rtdp_dagster.tsdb.restarts import RestartWatch, parse_start_time

VM_METRICS = b"""# HELP x
flag{name="a"} 1
vm_app_start_timestamp 1796550560
vm_app_uptime_seconds 705
process_start_time_seconds 1796550561
"""


def test_the_start_time_is_read_from_victoriametrics_page_or_the_prometheus_convention() -> None:
    assert parse_start_time(VM_METRICS) == 1796550560.0
    assert parse_start_time(b"process_start_time_seconds 1.5e9\n") == 1.5e9
    assert parse_start_time(b"other_metric 1\n") is None
    assert parse_start_time(b"vm_app_start_timestamp not-a-number\n") is None


def test_a_new_start_time_is_a_restart_dated_by_the_last_reading_of_the_old_one() -> None:
    readings = iter([100.0, 100.0, None, None, 250.0, 250.0])
    clock = iter([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    watch = RestartWatch(lambda: next(readings), clock=lambda: next(clock))
    # The looks at 30 and 40 read nothing (the TSDB was down): the kill came after the look at 20.
    assert [watch.restarted_after() for _ in range(6)] == [None, None, None, None, 20.0, None]


def test_a_tsdb_that_never_reports_a_start_time_is_never_taken_as_restarted() -> None:
    watch = RestartWatch(lambda: None)
    assert not any(watch.restarted_after() for _ in range(3))


def test_a_restart_while_the_watcher_was_away_is_seen_from_its_saved_reading() -> None:
    watch = RestartWatch(lambda: 250.0, clock=lambda: 90.0, known=100.0, known_at=20.0)
    assert watch.restarted_after() == 20.0
    assert (watch.known, watch.known_at) == (250.0, 90.0)


def test_after_a_restart_the_window_reaches_back_past_the_last_look() -> None:
    acknowledged = AcknowledgedPuts(window_s=15.0)
    acknowledged.add(100.0, 1_000, 2_000, 10)
    acknowledged.add(104.0, 3_000, 4_000, 20)
    # Looked last at 105, restart seen at 125: the kill came after 105, so 15 s before that is at risk.
    assert acknowledged.at_risk(since=105.0 - 15.0) == (1_000, 4_000, 30)
    assert acknowledged.at_risk() is None


def test_a_slow_put_after_the_last_look_does_not_drop_what_a_restart_puts_at_risk() -> None:
    acknowledged = AcknowledgedPuts(window_s=15.0)
    acknowledged.add(100.0, 1_000, 2_000, 10)
    # Looked at 101, then a batch whose put was acknowledged only 30 s later.
    acknowledged.add(131.0, 3_000, 4_000, 20)
    # A restart seen at the next look may date from just after 101: the put at 100 is still at risk.
    assert acknowledged.at_risk(since=101.0 - 15.0) == (1_000, 4_000, 30)


def test_the_puts_at_risk_are_carried_across_a_restart_of_the_stream() -> None:
    acknowledged = AcknowledgedPuts(window_s=15.0, keep_s=60.0)
    for at in (10.0, 50.0, 100.0):
        acknowledged.add(at, int(at) * 1_000, int(at) * 1_000 + 999, 1)
    restored = AcknowledgedPuts(window_s=15.0, puts=acknowledged.saved())
    assert restored.saved() == [[50.0, 50_000, 50_999, 1], [100.0, 100_000, 100_999, 1]], "older than keep_s"
    assert restored.at_risk() == (100_000, 100_999, 1)
