"""The stream's heartbeat check in Dagster: fresh passes, stale or missing fails."""

import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rtdp_dagster.heartbeat import write_heartbeat
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.streaming.assets import stream_heartbeat_fresh


@pytest.fixture(autouse=True)
def own_run_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RTDP_RUN_DIR", str(tmp_path))


def evaluate(tmp_path: Path, at: float | None) -> dg.AssetCheckResult:
    config = tmp_path / "rtdp.yaml"
    config.write_text(yaml.safe_dump({"run_dir": str(tmp_path), "stream": {"heartbeat_stale_s": 60}}))
    if at is not None:
        write_heartbeat(
            tmp_path / "stream" / "heartbeat.json",
            {"at": at, "queries": {"bronze": {"batch_id": 7, "kafka_lag": 12}}, "totals": {}},
        )
    result = stream_heartbeat_fresh(platform=PlatformConfigResource(config_file=str(config)))
    assert isinstance(result, dg.AssetCheckResult)
    return result


def test_fresh_heartbeat_passes(tmp_path: Path) -> None:
    result = evaluate(tmp_path, time.time() - 5)
    assert result.passed
    assert result.metadata["kafka_lag"].value == 12


def test_stale_heartbeat_fails_as_an_error(tmp_path: Path) -> None:
    result = evaluate(tmp_path, time.time() - 600)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert float(str(result.metadata["heartbeat_age_s"].value)) >= 600


def test_missing_heartbeat_fails(tmp_path: Path) -> None:
    result = evaluate(tmp_path, None)
    assert not result.passed and "no heartbeat" in str(result.metadata["problem"].value)
