"""Kafka records → validated rows, with the collectors' own rules (one source of truth).

Two paths give one verdict:

- **native** (in the JVM, no Python): a record whose JSON is exactly the canonical encoding of
  what Spark parsed from it (``to_json(from_json(v)) == v``) was read by Spark as Python reads it
  (same fields, same JSON types: a number in a string field re-encodes with quotes, an extra or
  duplicate field disappears), so the point rules can be checked on the typed columns. Records
  a collector wrote (orjson, fixed field order) take this path; it only ever *accepts*.
- **Python** (``validate_payload`` in a vectorised UDF): every record the native path did not
  accept, i.e. the rejects and anything unusual. Its verdict and reason are final.

The native checks are each at least as strict as Python's, so a record accepted natively is one
Python accepts (``tests/streaming/test_parse.py`` holds both paths to the same verdicts).

Nothing the producer wrote is trusted where it can be checked: both paths judge "too far in the
future" by ``received_ms`` (``clock``: the broker's append time, else the micro-batch's time), not
by the record's ``collected_at``, and both recompute the point_key from the record's identity
(natively with the project's JVM function, ``point_keys``) and refuse a record whose key differs.

A micro-batch is parsed in the streaming query (``parsed_records``, nothing in it depends on the
batch) and checked in the batch (``checked_records``, given the batch's receive time).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import OPS, SCHEMA_MAJOR, Envelope
from rtdp_dagster.envelope.validation import PointRules, validate_payload
from rtdp_dagster.quality.kinds import out_of_range
from rtdp_dagster.streaming.clock import broker_ms, with_received_ms
from rtdp_dagster.streaming.point_keys import point_key_column, register_point_key
from rtdp_dagster.streaming.tables import ENVELOPE_SCHEMA

# Java regex; \z (not $) so a trailing line break is never accepted natively.
_NAME = r"^[A-Za-z0-9._/-]+\z"
_VERSION = rf"^{SCHEMA_MAJOR}\.[0-9]+\z"


@lru_cache(maxsize=4)
def _rules(rules_json: str) -> PointRules:
    return PointRules.model_validate_json(rules_json)


@lru_cache(maxsize=4)
def _kinds(kinds_json: str | None) -> MetricKinds | None:
    return None if kinds_json is None else MetricKinds.model_validate_json(kinds_json)


def validation_udf(rules: PointRules, kinds: MetricKinds | None = None):
    rules_json = rules.model_dump_json()
    kinds_json = None if kinds is None else kinds.model_dump_json()

    @F.pandas_udf("reason string, detail string")  # type: ignore[call-overload]
    def validate(values: pd.Series, received: pd.Series) -> pd.DataFrame:
        """values: the raw Kafka bytes of records the native path did not accept; received: their
        ``received_ms`` (the clock "in the future" is judged by)."""
        active, active_kinds = _rules(rules_json), _kinds(kinds_json)
        reasons: list[str | None] = []
        details: list[str | None] = []
        for value, received_ms in zip(values, received.tolist(), strict=True):
            result = validate_payload(value, active, active_kinds, int(received_ms))
            if isinstance(result, Envelope):
                reasons.append(None)
                details.append(None)
            else:
                reasons.append(result.reason)
                details.append(result.detail[:1000])
        return pd.DataFrame({"reason": reasons, "detail": details})

    return validate


def _name_ok(name: Column, max_length: int) -> Column:
    return name.isNotNull() & (F.length(name) <= max_length) & name.rlike(_NAME)


def natively_valid(
    envelope: Column, raw_value: Column, received_ms: Column, rules: PointRules, kinds: MetricKinds | None
) -> Column:
    """True only where the record is canonical, its point_key is its identity's hash and every point
    rule holds, the future judged by received_ms (never null). Needs ``register_point_key``."""
    field = envelope.getField
    tags = field("tags")
    op, value, ts = field("ums_op_"), field("value"), field("ums_ts_")
    canonical = F.to_json(envelope, {"ignoreNullFields": "false"}) == raw_value
    required = [field(name).isNotNull() for name in ("namespace", "point_key", "ums_id_", "wave", "source",
                                                       "collected_at", "schema_version")]  # fmt: skip
    keys = F.map_keys(tags)
    tag_ok = (F.size(keys) == F.size(F.array_distinct(keys))) & F.forall(
        F.map_entries(tags),
        lambda entry: (
            _name_ok(entry["key"], rules.max_tag_key_length) & _name_ok(entry["value"], rules.max_tag_value_length)
        ),
    )
    is_retraction = op == "d"
    finite = value.isNotNull() & ~F.isnan(value) & (F.abs(value) < F.lit(float("inf")))
    checks = [
        canonical,
        *required,
        field("schema_version").rlike(_VERSION),
        _name_ok(field("metric"), rules.max_metric_length),
        tags.isNotNull() & (F.size(tags) <= rules.max_tags) & tag_ok,
        op.isin(*OPS),
        ts.isNotNull() & (ts >= rules.min_timestamp_ms),
        ts <= received_ms + F.lit(rules.max_future_s * 1000),
        is_retraction | finite,
        field("point_key") == point_key_column(field("metric"), tags, ts),
    ]
    if kinds is not None:
        checks.append(is_retraction | ~out_of_range(field("metric"), value, kinds))
    verdict = checks[0]
    for check in checks[1:]:
        verdict = verdict & check
    return F.coalesce(verdict, F.lit(False))


def parsed_records(kafka: DataFrame) -> DataFrame:
    """Kafka coordinates, the raw record, its typed envelope and ``broker_ms`` (the Kafka timestamp
    where the broker set it): Spark's Kafka source (``timestampType`` included) → ``checked_records``."""
    raw_value = F.col("value").cast("string")
    return kafka.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        broker_ms(F.col("timestamp"), F.col("timestampType")).alias("broker_ms"),
        F.col("key").cast("string").alias("raw_key"),
        raw_value.alias("raw_value"),
        F.col("value").alias("raw_bytes"),  # what Python validates: the bytes as they are on Kafka
        F.from_json(raw_value, ENVELOPE_SCHEMA).alias("envelope"),
    )


def checked_records(
    parsed: DataFrame, rules: PointRules, kinds: MetricKinds | None = None, *, receive_ms: int
) -> DataFrame:
    """parsed (``parsed_records``) with ``received_ms`` and whether the native path accepts the record.

    receive_ms: when the batch was received (the micro-batch's time), the clock of records whose
    Kafka timestamp the producer set. kinds (``quality.metric_kinds``): values outside their metric
    kind's range are rejected too. The verdict of the other records comes from ``verdicts``.
    """
    register_point_key(parsed.sparkSession)
    received = with_received_ms(parsed, receive_ms)
    verdict = natively_valid(F.col("envelope"), F.col("raw_value"), F.col("received_ms"), rules, kinds)
    return received.withColumn("native_valid", verdict)


def _last_tag_wins(envelope: Column) -> Column:
    """from_json keeps a repeated tag key twice; Python keeps the last value (mapKeyDedupPolicy)."""
    tags = envelope.getField("tags")
    return envelope.withField("tags", F.map_from_arrays(F.map_keys(tags), F.map_values(tags)))


def _validator(rules: PointRules, kinds: MetricKinds | None) -> Any:
    return cast(Any, validation_udf(rules, kinds))  # a pandas UDF: called on Columns, not Series


def _passed_through(checked: DataFrame) -> list[str]:
    """The columns of checked kept as they are (Kafka coordinates, raw record, the native flag)."""
    return [name for name in checked.columns if name not in ("raw_bytes", "envelope")]


@contextmanager
def verdicts(
    checked: DataFrame, rules: PointRules, kinds: MetricKinds | None = None, all_native: bool = False
) -> Iterator[DataFrame]:
    """checked (persisted by the caller) with ``reason`` and ``detail``: null for an accepted record.

    Only the records the native path did not accept go through Python; their verdicts are cached
    while the block runs, so the UDF sees each of them once however often the result is read.
    all_native: the caller knows that every record was accepted natively (no Python at all).
    """
    kept = _passed_through(checked)
    accepted = checked.where("native_valid").select(
        *kept, F.lit(None).cast("string").alias("reason"), F.lit(None).cast("string").alias("detail"), "envelope"
    )
    if all_native:
        yield accepted
        return
    validate = _validator(rules, kinds)
    verdict = cast(Column, validate(F.col("raw_bytes"), F.col("received_ms")))
    slow = checked.where(~F.col("native_valid")).withColumn("verdict", verdict)
    judged = slow.select(
        *kept, "verdict.reason", "verdict.detail",
        F.when(F.col("verdict.reason").isNull(), _last_tag_wins(F.col("envelope"))).alias("envelope"),
    ).persist()  # fmt: skip
    try:
        yield accepted.unionByName(judged)
    finally:
        judged.unpersist()
