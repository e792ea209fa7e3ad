from pathlib import Path

import pytest

from rtdp_dagster.config import ConfigError, load_settings


def test_defaults_derive_endpoints_from_the_local_stack(tmp_path: Path) -> None:
    settings = load_settings(environ={"RTDP_RUN_DIR": str(tmp_path), "RTDP_STACK__KAFKA__PORT": "19092"})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert settings.spark.connect_url == "sc://127.0.0.1:15002"
    assert settings.tsdb.history.put_http_url == "http://127.0.0.1:4245"
    assert settings.delta.root == str(tmp_path / "delta")


def test_remote_endpoints_are_configuration_only() -> None:
    settings = load_settings(
        environ={
            "RTDP_KAFKA__BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092",
            "RTDP_SPARK__CONNECT_URL": "sc://spark.example:15002",
            "RTDP_TSDB__REALTIME__URL": "http://vm.example:8428",
        }
    )
    assert settings.kafka.client_options()["bootstrap_servers"] == ["kafka-1:9092", "kafka-2:9092"]
    assert settings.spark.connect_url == "sc://spark.example:15002"
    assert settings.tsdb.realtime.url == "http://vm.example:8428"


def test_bad_key_in_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "rtdp.yaml"
    config.write_text("kafka:\n  bootstrap_server: localhost:9092\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ={})
    assert "kafka.bootstrap_server: unknown key" in str(error.value)
    assert str(config) in str(error.value)


def test_bad_value_in_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "rtdp.yaml"
    config.write_text("stack:\n  victoria_metrics:\n    realtime:\n      retention: forever\n")
    with pytest.raises(ConfigError, match=r"stack\.victoria_metrics\.realtime\.retention"):
        load_settings(config, environ={})


def test_bad_env_override_names_the_variable_and_key() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"RTDP_STACK__KAFKA__PORT": "not-a-port"})
    assert "RTDP_STACK__KAFKA__PORT: stack.kafka.port" in str(error.value)


def test_env_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "rtdp.yaml"
    config.write_text("spark:\n  shuffle_partitions: 8\n")
    settings = load_settings(config, environ={"RTDP_SPARK__SHUFFLE_PARTITIONS": "2"})
    assert settings.spark.shuffle_partitions == 2


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"RTDP_CONFIG": str(tmp_path / "nope.yaml")})


def test_secrets_are_not_printed() -> None:
    settings = load_settings(environ={"RTDP_KAFKA__SASL_PASSWORD": "hunter2", "RTDP_KAFKA__SASL_MECHANISM": "PLAIN"})
    assert "hunter2" not in settings.model_dump_json()
    assert settings.kafka.client_options()["sasl_plain_password"] == "hunter2"


def test_a_daily_deadline_at_midnight_is_refused_by_name() -> None:
    # Dagster's cron freshness policy refuses it only when the definitions load, in every process.
    with pytest.raises(ConfigError) as error:
        load_settings(environ={"RTDP_QUALITY__FRESHNESS__SILVER_DEADLINE_CRON": "0 0 * * *"})
    assert "quality.freshness.silver_deadline_cron" in str(error.value)
    assert "00:01 or later" in str(error.value)
    settings = load_settings(environ={"RTDP_QUALITY__FRESHNESS__SILVER_DEADLINE_CRON": "1 0 * * *"})
    assert settings.quality.freshness.silver_deadline_cron == "1 0 * * *"
