"""A new master-data version while the stream runs: later points carry the new site and app."""

import os
import signal
import time
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.process import wait_until
from rtdp_dagster.tsdb.query import export_series, force_flush

from .conftest import publish, rtdp, start_rtdp, with_overrides
from .test_stream_mix import METRIC, envelope

pytestmark = pytest.mark.long_running

MOVED_HOST = "site01-host0049"  # re-racked from site01 to site03 in master data v0002


def sites_seen(settings: Settings, since_ms: int) -> set[str]:
    force_flush(settings.tsdb.realtime.url)
    return {
        series["tags"].get("site", "")
        for series in export_series(settings.tsdb.realtime.url, METRIC, {"host": MOVED_HOST})
        if any(ts >= since_ms for ts, _ in series["points"])
    }


def test_new_master_data_version_is_picked_up_without_restart(stream_env: tuple[Settings, Path]) -> None:
    settings, config_file = stream_env
    with_overrides(config_file, stream={"master_check_s": 0})  # look for a new version before every batch
    loaded = rtdp(config_file, "master", "load", "--version", "1")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    start = (int(time.time()) - 300) * 1000
    process = start_rtdp(config_file, "stream")
    try:
        publish(settings, [envelope(MOVED_HOST, start + i * 1000, float(i), version=start + i) for i in range(5)])
        assert wait_until(lambda: sites_seen(settings, start) == {"site01"}, timeout_s=240, interval_s=2)

        loaded = rtdp(config_file, "master", "load", "--version", "2")
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        later = start + 100_000
        publish(settings, [envelope(MOVED_HOST, later + i * 1000, float(i), version=later + i) for i in range(5)])
        assert wait_until(lambda: sites_seen(settings, later) == {"site03"}, timeout_s=240, interval_s=2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=120)
