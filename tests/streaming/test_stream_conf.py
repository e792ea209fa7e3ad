"""The stream application's Spark configuration, without starting it."""

from __future__ import annotations

from pathlib import Path

from rtdp_dagster.config import Settings
from rtdp_dagster.streaming.session import stream_conf


def _settings(tmp_path: Path, **sections: dict) -> Settings:
    # No class archive under this jars folder: only the options the configuration gives.
    return Settings.model_validate({"run_dir": str(tmp_path), "jars_dir": str(tmp_path / "jars"), **sections})


def test_stream_java_options_go_to_its_driver_and_executors_and_join_spark_conf(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        stream={"java_options": ["-XX:TieredStopAtLevel=1", "-Xss4m"], "driver_memory": "3g"},
        spark={"conf": {"spark.driver.extraJavaOptions": "-Dfrom.spark.conf=1"}},
    )
    conf = stream_conf(settings)
    assert conf["spark.driver.extraJavaOptions"] == "-XX:TieredStopAtLevel=1 -Xss4m -Dfrom.spark.conf=1"
    assert conf["spark.executor.extraJavaOptions"] == "-XX:TieredStopAtLevel=1 -Xss4m"
    assert conf["spark.driver.memory"] == "3g"


def test_no_stream_java_options_no_jvm_options(tmp_path: Path) -> None:
    conf = stream_conf(_settings(tmp_path))
    assert "spark.driver.extraJavaOptions" not in conf and "spark.executor.extraJavaOptions" not in conf
