"""collection.envelope_version and collection.ums_batch: defaults, overrides and refusals."""

import pytest

from rtdp_dagster.config import ConfigError, load_settings


def test_collectors_publish_v2_unless_told_otherwise() -> None:
    settings = load_settings(environ={})
    assert settings.collection.envelope_version == 2
    bounds = settings.collection.ums_batch
    assert (bounds.max_points, bounds.max_bytes, bounds.linger_ms) == (2000, 512 * 1024, 100.0)


def test_the_version_and_v2_bounds_come_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "RTDP_COLLECTION__ENVELOPE_VERSION": "1",
            "RTDP_COLLECTION__UMS_BATCH__MAX_POINTS": "500",
            "RTDP_COLLECTION__UMS_BATCH__LINGER_MS": "20",
        }
    )
    assert settings.collection.envelope_version == 1
    assert settings.collection.ums_batch.max_points == 500 and settings.collection.ums_batch.linger_ms == 20


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RTDP_COLLECTION__ENVELOPE_VERSION", "3", "collection.envelope_version"),
        ("RTDP_COLLECTION__UMS_BATCH__MAX_BYTES", "2000000", "collection.ums_batch.max_bytes"),
        ("RTDP_COLLECTION__UMS_BATCH__LINGER_MS", "0", "collection.ums_batch.linger_ms"),
        ("RTDP_COLLECTION__UMS_BATCH__MAX_RECORDS", "5", "unknown key"),
    ],
)
def test_bad_values_are_refused_naming_the_key(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(environ={name: value})
    assert name in str(caught.value)
