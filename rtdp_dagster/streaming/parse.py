"""Kafka records → validated rows, with the collectors' own Python rules (one source of truth).

Validation runs as a vectorised pandas UDF calling ``validate_payload``: a record rejected here
is rejected by a collector and by the batch checks with the same reason, and the other way round.
Accepted rows are then typed by Spark's native ``from_json`` with the explicit envelope schema.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.validation import PointRules, validate_payload
from rtdp_dagster.streaming.tables import ENVELOPE_SCHEMA


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
    def validate(values: pd.Series) -> pd.DataFrame:
        active, active_kinds = _rules(rules_json), _kinds(kinds_json)
        reasons: list[str | None] = []
        details: list[str | None] = []
        for value in values:
            result = validate_payload(value, active, active_kinds)
            if isinstance(result, Envelope):
                reasons.append(None)
                details.append(None)
            else:
                reasons.append(result.reason)
                details.append(result.detail[:1000])
        return pd.DataFrame({"reason": reasons, "detail": details})

    return validate


def checked_records(kafka: DataFrame, rules: PointRules, kinds: MetricKinds | None = None) -> DataFrame:
    """Kafka coordinates, the raw value, the verdict, and the typed envelope of accepted rows.

    kinds (``quality.metric_kinds``): values outside their metric kind's range are rejected too.
    """
    validate = cast(Any, validation_udf(rules, kinds))  # a pandas UDF: called on a Column, not a Series
    verdict = cast(Column, validate(F.col("value")))
    return kafka.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("raw_key"),
        F.col("value").cast("string").alias("raw_value"),
        verdict.alias("verdict"),
    ).select(
        "*",
        F.col("verdict.reason").alias("reason"),
        F.col("verdict.detail").alias("detail"),
        F.when(F.col("verdict.reason").isNull(), F.from_json("raw_value", ENVELOPE_SCHEMA)).alias("envelope"),
    )
