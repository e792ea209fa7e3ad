"""One source of rules: metric kinds from configuration, applied by the envelope validation (stream)
and, with the same patterns, by Spark (batch suites)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pyspark.sql import functions as F

from rtdp_dagster.config import ConfigError, load_settings
from rtdp_dagster.envelope import validation as v
from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.metric_kinds import MetricKinds, glob_regex
from rtdp_dagster.envelope.records import RawRecord
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.spark.metric_kinds import kind_column, out_of_range

NOW = 1_700_000_000_000
KINDS = MetricKinds()
NAMES = {
    "sys.cpu.util": "percent",
    "cloudwatch.ec2.cpu_utilization": "percent",
    "cloudwatch.rds.cpu_utilization": "percent",
    "cloudwatch.ec2.disk_write_bytes": "non_negative",
    "cloudwatch.elb.request_count": "non_negative",  # a per-period count, not a counter
    "cloudwatch.iio.network_in": "non_negative",
    "sys.mem.used_mb": "non_negative",
    "net.if.bytes_in": "non_negative",
    "app.requests.count": "counter",
    "app.errors.count": "counter",
    "sys.cpu.cores": "free",
    "sys.cpu.utilization": "free",  # a glob is anchored: sys.cpu.util matches only itself
}


def test_default_kinds_by_metric_name() -> None:
    assert {name: KINDS.kind_of(name) for name in NAMES} == NAMES


def test_globs_match_literally_apart_from_stars() -> None:
    assert glob_regex("a.b*") == r"^a\.b.*$"
    kinds = MetricKinds(patterns=[{"pattern": "x?.y", "kind": "percent"}])  # type: ignore[list-item]
    assert (kinds.kind_of("x1.y"), kinds.kind_of("x12.y"), kinds.kind_of("x1zy")) == ("percent", "free", "free")


def test_a_pattern_naming_an_undefined_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="undefined kinds"):
        MetricKinds(patterns=[{"pattern": "a.*", "kind": "bytes"}])  # type: ignore[list-item]


def test_configuration_names_a_bad_severity_key_and_takes_env_overrides() -> None:
    settings = load_settings("/dev/null", environ={"RTDP_QUALITY__SEVERITIES__SILVER__COMPLETENESS": "ERROR"})
    assert settings.quality.severities["silver"]["completeness"] == "ERROR"
    assert settings.quality.severities["silver"]["value_range"] == "ERROR"
    with pytest.raises(ConfigError, match=r"RTDP_QUALITY__SEVERITIES__SILVER__NOPE|silver\.nope"):
        load_settings("/dev/null", environ={"RTDP_QUALITY__SEVERITIES__SILVER__NOPE": "WARN"})


def _payload(metric: str, value: float) -> bytes:
    tags = {"host": "h1"}
    return encode(
        Envelope(
            namespace="a.b.c.d.v1.0.0",
            metric=metric,
            tags=tags,
            value=value,
            ums_ts_=NOW,
            point_key=point_key(metric, tags, NOW),
            ums_id_=1,
            ums_op_="i",
            wave=1,
            source="s",
            collected_at=NOW,
        )
    )


@pytest.mark.parametrize(
    ("metric", "value", "rejected"),
    [
        ("sys.cpu.util", 100.0, False),
        ("sys.cpu.util", 100.5, True),
        ("sys.cpu.util", -0.1, True),
        ("sys.mem.used_mb", -1.0, True),
        ("app.requests.count", -3.0, True),
        ("sys.cpu.cores", -3.0, False),
    ],
)
def test_the_stream_rejects_values_outside_their_kind(metric: str, value: float, rejected: bool) -> None:
    verdict = v.validate_payload(_payload(metric, value), v.PointRules(), KINDS)
    if rejected:
        assert isinstance(verdict, v.Rejection) and verdict.reason == v.VALUE_OUT_OF_RANGE
        assert metric in verdict.detail
    else:
        assert isinstance(verdict, Envelope)
    # Without kinds (as before), only the envelope and point rules apply.
    assert isinstance(v.validate_payload(_payload(metric, value), v.PointRules()), Envelope)


def test_a_retraction_has_no_value_to_judge() -> None:
    record = RawRecord("sys.cpu.util", {"host": "h"}, None, NOW - 1000, "d", 5)
    validator = v.PointValidator(v.PointRules(), KINDS)
    assert isinstance(
        validator.to_envelope(record, namespace="a.b.c.d.v1.0.0", source="s", wave=1, collected_at=NOW, ums_id=1),
        Envelope,
    )
    bad = RawRecord("sys.cpu.util", {"host": "h"}, 101.0, NOW - 1000)
    rejected = validator.to_envelope(bad, namespace="a.b.c.d.v1.0.0", source="s", wave=1, collected_at=NOW, ums_id=1)
    assert isinstance(rejected, v.Rejection) and rejected.reason == v.VALUE_OUT_OF_RANGE


def test_spark_assigns_the_same_kinds_and_ranges_as_python(spark) -> None:
    values = [(name, value) for name in NAMES for value in (-1.0, 50.0, 100.0, 101.0)]
    frame = spark.createDataFrame(values, "metric string, value double")
    rows = frame.select(
        "metric",
        "value",
        kind_column(F.col("metric"), KINDS).alias("kind"),
        out_of_range(F.col("metric"), F.col("value"), KINDS).alias("outside"),
    ).collect()
    assert len(rows) == len(values)
    for row in rows:
        assert row["kind"] == KINDS.kind_of(row["metric"]), row
        assert row["outside"] == (KINDS.out_of_range(row["metric"], row["value"]) is not None), row
