"""Kafka records → validated rows, one per point, with the collectors' own rules (one source of truth).

A v1 record is one point; a v2 record (a UMS batch, ``ums_batch_parse``) is exploded in the JVM into
its points, each with its index in the record, and every point goes through the same checks below.

Two paths give one verdict:

- **native** (in the JVM, no Python): a v1 record whose JSON is exactly the canonical encoding of
  what Spark parsed from it (``to_json(from_json(v)) == v``) was read by Spark as Python reads it
  (same fields, same JSON types: a number in a string field re-encodes with quotes, an extra or
  duplicate field disappears), so the point rules can be checked on the typed columns; a v2
  record is read and its points checked by the project's Java function (``ums_batch_parse``).
  Records a collector wrote (orjson, fixed field order) take this path; it only ever *accepts*.
- **Python** (``validate_payload`` in a vectorised UDF): every record the native path did not
  accept, i.e. the rejects and anything unusual. Its verdict and reason are final.

The native checks are each at least as strict as Python's, so a record accepted natively is one
Python accepts (``tests/streaming/test_parse.py`` holds both paths to the same verdicts).

Nothing the producer wrote is trusted where it can be checked: both paths judge "too far in the
future" by ``received_ms`` (``clock``: the broker's append time, else the micro-batch's time), not
by the record's ``collected_at``, and both recompute the point_key from the record's identity
(natively with the project's JVM function, ``point_keys``) and refuse a record whose key differs.

A micro-batch is parsed in the streaming query (``parsed_records``, nothing in it depends on the
batch) and checked in the batch (``checked_records``, given the batch's receive time): a v2 point
the JVM accepted needs only its timestamp checked against that time.
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
from rtdp_dagster.envelope.schema import OPS, SCHEMA_MAJOR, SCHEMA_VERSION
from rtdp_dagster.envelope.validation import PointRules
from rtdp_dagster.spark.metric_kinds import kind_bounds
from rtdp_dagster.streaming.clock import broker_ms, with_received_ms
from rtdp_dagster.streaming.point_keys import point_key_of, point_key_prefix, register_point_key
from rtdp_dagster.streaming.record_verdicts import BatchVerdicts, record_verdict
from rtdp_dagster.streaming.tables import ENVELOPE_SCHEMA
from rtdp_dagster.streaming.ums_batch_parse import (
    frame_head,
    is_ums_batch,
    point_json,
    point_record,
    register_ums_points,
    tuple_text,
    ums_points,
)

_VERSION = rf"^{SCHEMA_MAJOR}\.[0-9]+\z"

# A metric or tag name or value, as Java regex; \z (not $) so a trailing line break is never accepted.
NAME = r"^[A-Za-z0-9._/-]+\z"


def _longest(names: Column) -> Column:
    return F.aggregate(names, F.lit(0), lambda longest, name: F.greatest(longest, F.length(name)))


def series_facts(metric: Column, tags: Column, kinds: MetricKinds | None = None) -> Column:
    """What the native point checks need of a series (``parse.natively_valid``): the point_key's
    series prefix, whether its names are well formed with distinct tag keys, the longest name, and
    the bounds of its metric's kind (``low``, ``high``; null: none, or no kinds given). For v1
    records (the JVM checks a v2 record's series itself). Null where a name is null."""
    keys = F.map_keys(tags)
    names_ok = (
        metric.rlike(NAME)
        & (F.size(keys) == F.size(F.array_distinct(keys)))
        & F.forall(F.map_entries(tags), lambda entry: entry["key"].rlike(NAME) & entry["value"].rlike(NAME))
    )
    no_bound = F.lit(None).cast("double")
    low, high = (no_bound, no_bound) if kinds is None else kind_bounds(metric, kinds)
    return F.struct(
        point_key_prefix(metric, tags).alias("key_prefix"),
        names_ok.alias("names_ok"),
        F.length(metric).alias("metric_length"),
        _longest(keys).alias("tag_key_length"),
        _longest(F.map_values(tags)).alias("tag_value_length"),
        low.alias("low"),
        high.alias("high"),
    )


@lru_cache(maxsize=4)
def _rules(rules_json: str) -> PointRules:
    return PointRules.model_validate_json(rules_json)


@lru_cache(maxsize=4)
def _kinds(kinds_json: str | None) -> MetricKinds | None:
    return None if kinds_json is None else MetricKinds.model_validate_json(kinds_json)


def validation_udf(rules: PointRules, kinds: MetricKinds | None = None):
    rules_json = rules.model_dump_json()
    kinds_json = None if kinds is None else kinds.model_dump_json()

    @F.pandas_udf("reason string, detail string, whole boolean")  # type: ignore[call-overload]
    def validate(values: pd.Series, received: pd.Series, index: pd.Series, ums_frame: pd.Series) -> pd.DataFrame:
        """values: the raw Kafka bytes of rows the native path did not accept; received: their
        ``received_ms`` (the clock "in the future" is judged by); index: the point's index in its
        record; ums_frame: null for a v1 record, else whether the JVM read the v2 frame."""
        active, active_kinds = _rules(rules_json), _kinds(kinds_json)
        batches = BatchVerdicts(active, active_kinds)
        judged = [
            record_verdict(
                value,
                int(received_ms),
                active,
                active_kinds,
                index=int(at),
                ums_frame=None if frame is None or pd.isna(frame) else bool(frame),
                batches=batches,
            )
            for value, received_ms, at, frame in zip(
                values, received.tolist(), index.tolist(), ums_frame.astype(object).tolist(), strict=True
            )
        ]
        return pd.DataFrame(
            {
                "reason": [item.reason for item in judged],
                "detail": [item.detail for item in judged],
                "whole": [item.whole for item in judged],
            }
        )

    return validate


def natively_valid(envelope: Column, received_ms: Column, rules: PointRules, parsed: Column) -> Column:
    """True only where the native path accepts the point, the future judged by received_ms (never
    null). Needs ``register_point_key``.

    parsed: ``parsed_records``' ``native``: for a v1 record whether Spark read it as Python reads it
    (``canonical``) and its ``series_facts`` (whose kind bounds are the ones ``parsed_records`` was
    given); for a v2 point whether the JVM accepted it (``ok``: every check but the future)."""
    field = envelope.getField
    ts = field("ums_ts_")
    not_ahead = ts <= received_ms + F.lit(rules.max_future_s * 1000)
    v1 = _v1_valid(envelope, rules, parsed.getField("canonical"), parsed.getField("series"))
    return F.coalesce(
        F.when(parsed.getField("v2"), parsed.getField("ok") & not_ahead).otherwise(v1 & not_ahead), F.lit(False)
    )


def _v1_valid(envelope: Column, rules: PointRules, canonical: Column, series: Column) -> Column:
    """Every native check of a v1 record but the future one."""
    field = envelope.getField
    tags = field("tags")
    op, value, ts = field("ums_op_"), field("value"), field("ums_ts_")
    facts = series.getField
    required = [
        field(name).isNotNull()
        for name in ("namespace", "point_key", "ums_id_", "wave", "source", "collected_at", "schema_version")
    ]
    is_retraction = op == "d"
    finite = value.isNotNull() & ~F.isnan(value) & (F.abs(value) < F.lit(float("inf")))
    checks = [
        canonical,
        *required,
        field("schema_version").rlike(_VERSION),
        field("metric").isNotNull() & tags.isNotNull() & facts("names_ok"),
        facts("metric_length") <= rules.max_metric_length,
        F.size(tags) <= rules.max_tags,
        facts("tag_key_length") <= rules.max_tag_key_length,
        facts("tag_value_length") <= rules.max_tag_value_length,
        op.isin(*OPS),
        ts.isNotNull() & (ts >= rules.min_timestamp_ms),
        is_retraction | finite,
        field("point_key") == point_key_of(facts("key_prefix"), ts),
        # Inside its kind's bounds (NaN is refused above as not finite).
        is_retraction
        | ~(F.coalesce(value < facts("low"), F.lit(False)) | F.coalesce(value > facts("high"), F.lit(False))),
    ]
    verdict = checks[0]
    for check in checks[1:]:
        verdict = verdict & check
    return verdict


def parsed_records(kafka: DataFrame, rules: PointRules, kinds: MetricKinds | None = None) -> DataFrame:
    """One row per point: Kafka coordinates (``kafka_index``: the point's index in its record, 0 for
    v1), the raw record and its size, the point's typed envelope, ``native`` (what the native
    verdict needs, see ``natively_valid``), ``ums_frame`` (null for v1; for v2 whether the JVM read
    the frame) and ``broker_ms`` (the Kafka timestamp where the broker set it): Spark's Kafka
    source (``timestampType`` included) → ``checked_records``. A v2 record whose frame the JVM
    cannot read is one row, judged whole. ``point_record``: the row's ``raw_bytes`` is not the Kafka
    record but a one-point record of its point (a point of a lean v2 record), which Python judges
    as that record's point 0; it is built from ``_frame`` and ``tuple_json`` by ``checked_records``,
    as is a v2 point's ``raw_value``. rules and kinds (``quality.metric_kinds``: values outside
    their bounds are refused too) must be the ones ``checked_records`` and ``verdicts`` are given."""
    register_ums_points(kafka.sparkSession)
    raw_value = F.col("value").cast("string")
    records = kafka.select(
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        broker_ms(F.col("timestamp"), F.col("timestampType")).alias("broker_ms"),
        F.col("key").cast("string").alias("raw_key"),
        raw_value.alias("raw_value"),
        F.col("value").alias("raw_bytes"),  # what Python validates: the bytes as they are on Kafka
        F.octet_length(F.col("value")).alias("raw_size"),
        is_ums_batch(raw_value).alias("_v2"),
    )
    # The JVM's reading once per record, in a column of its own (each use below reads the column).
    v2 = F.col("_v2")
    read = records.select(
        "*",
        F.when(~v2, F.from_json(F.col("raw_value"), ENVELOPE_SCHEMA)).alias("_envelope"),
        F.when(v2, ums_points(F.col("raw_bytes"), rules, kinds)).alias("_ums"),
    )
    ums = F.col("_ums")
    readable = F.coalesce(ums.getField("readable"), F.lit(False))
    # A lean record is not carried to its points (an explode copies what it carries once per output
    # row): each point that Python has to judge gets a one-point record of its own instead.
    lean = F.coalesce(ums.getField("lean"), F.lit(False))
    whole = [name for name in records.columns if name not in ("_v2", "raw_value", "raw_bytes")]
    frame = F.struct(
        *[ums.getField(name).alias(name) for name in ("version", "namespace", "source", "wave", "collected_at")]
    )
    carried = [*whole, "_v2", "_envelope", "point_record", "raw_value", "raw_bytes", "_frame", "_frame_read"]
    # v1 records and unreadable frames have no groups: explode_outer keeps them as one row each.
    groups = read.select(
        *whole,
        "_v2",
        "_envelope",
        lean.alias("point_record"),
        F.when(~lean, F.col("raw_value")).alias("raw_value"),
        F.when(~lean, F.col("raw_bytes")).alias("raw_bytes"),
        F.when(readable, frame).alias("_frame"),
        readable.alias("_frame_read"),
        F.explode_outer(F.when(readable, ums.getField("groups"))).alias("_group"),
    )
    group = F.col("_group")
    # The group's parts as columns first: exploded straight from the struct, every point row would
    # carry the group's whole points array (n copies of n points once rows are materialized).
    series = groups.select(
        *carried,
        group.getField("metric").alias("_metric"),
        group.getField("tags").alias("_tags"),
        group.getField("points").alias("_points"),
    )
    points = series.select(*carried, "_metric", "_tags", F.explode_outer("_points").alias("_point"))
    point, envelope, frame_of = F.col("_point"), F.col("_envelope"), F.col("_frame")
    v2_envelope = F.struct(
        frame_of.getField("namespace").alias("namespace"),
        F.col("_metric").alias("metric"),
        F.col("_tags").alias("tags"),
        point.getField("value").alias("value"),
        point.getField("ums_ts_").alias("ums_ts_"),
        point.getField("point_key").alias("point_key"),
        point.getField("ums_id_").alias("ums_id_"),
        point.getField("ums_op_").alias("ums_op_"),
        frame_of.getField("wave").alias("wave"),
        frame_of.getField("source").alias("source"),
        frame_of.getField("collected_at").alias("collected_at"),
        F.lit(SCHEMA_VERSION).alias("schema_version"),
    )
    v1_canonical = F.to_json(envelope, {"ignoreNullFields": "false"}) == F.col("raw_value")
    native = F.struct(
        v2.alias("v2"),
        point.getField("ok").alias("ok"),
        F.when(~v2, v1_canonical).alias("canonical"),
        F.when(~v2, series_facts(envelope.getField("metric"), envelope.getField("tags"), kinds)).alias("series"),
    )
    # What quarantine and Python need of a v2 point (``point_record``, ``point_json``) is built by
    # ``checked_records`` for the rows the native path refuses only.
    return points.select(
        *whole,
        "raw_bytes",
        "raw_value",
        "_frame",
        point.getField("tuple_json").alias("tuple_json"),
        "point_record",
        F.coalesce(point.getField("at"), F.lit(0)).alias("kafka_index"),
        F.when(v2, F.when(F.col("_frame_read"), v2_envelope)).otherwise(envelope).alias("envelope"),
        native.alias("native"),
        F.when(v2, F.col("_frame_read")).alias("ums_frame"),
    )


class PointChecks:
    """What ``checked_records`` adds to parsed rows, as columns built once.

    A stream checks every micro-batch with the same rules; building these expressions is a few
    hundred calls into the JVM (about 0.1 s), so a stream builds them once and applies them to each
    batch (``checked``). Needs an active Spark session when made.
    """

    _PIECES = ("raw_bytes", "raw_value", "_frame", "tuple_json", "native")

    def __init__(self, rules: PointRules) -> None:
        self.native_valid = natively_valid(F.col("envelope"), F.col("received_ms"), rules, F.col("native"))
        # A refused v2 point keeps its series and tuple; a refused record keeps itself. A v2 point the
        # native path accepts needs neither (only quarantine and Python read them).
        slow = ~F.col("native_valid")
        envelope = F.col("envelope")
        # The JVM writes the tuple of the points it refuses; one refused here only for its timestamp
        # is written again from its envelope.
        tuple_json = F.coalesce(F.col("tuple_json"), tuple_text(envelope))
        head = frame_head(F.col("_frame"))
        raw_bytes = F.when(F.col("point_record"), F.when(slow, point_record(head, envelope, tuple_json)))
        raw_value = F.when(F.col("_frame").isNotNull(), F.when(slow, point_json(envelope, tuple_json)))
        self.raw_bytes = raw_bytes.otherwise(F.col("raw_bytes")).alias("raw_bytes")
        self.raw_value = raw_value.otherwise(F.col("raw_value")).alias("raw_value")

    def checked(self, parsed: DataFrame, *, receive_ms: int) -> DataFrame:
        """See ``checked_records``."""
        register_point_key(parsed.sparkSession)
        checked = with_received_ms(parsed, receive_ms).withColumn("native_valid", self.native_valid)
        return checked.select(
            *[name for name in checked.columns if name not in self._PIECES], self.raw_bytes, self.raw_value
        )


def checked_records(parsed: DataFrame, rules: PointRules, *, receive_ms: int) -> DataFrame:
    """parsed (``parsed_records``) with ``received_ms`` and whether the native path accepts the record;
    a v2 point's ``raw_bytes`` and ``raw_value`` are there only where it does not (null otherwise).

    receive_ms: when the batch was received (the micro-batch's time), the clock of records whose
    Kafka timestamp the producer set. The verdict of the other records comes from ``verdicts``.
    """
    return PointChecks(rules).checked(parsed, receive_ms=receive_ms)


def _last_tag_wins(envelope: Column) -> Column:
    """from_json keeps a repeated tag key twice; Python keeps the last value (mapKeyDedupPolicy)."""
    tags = envelope.getField("tags")
    return envelope.withField("tags", F.map_from_arrays(F.map_keys(tags), F.map_values(tags)))


def _validator(rules: PointRules, kinds: MetricKinds | None) -> Any:
    return cast(Any, validation_udf(rules, kinds))  # a pandas UDF: called on Columns, not Series


def _passed_through(checked: DataFrame) -> list[str]:
    """The columns of checked kept as they are (Kafka coordinates, raw record, the native flag)."""
    return [name for name in checked.columns if name not in ("raw_bytes", "envelope", "kafka_index")]


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
        *kept,
        "kafka_index",
        F.lit(None).cast("string").alias("reason"),
        F.lit(None).cast("string").alias("detail"),
        "envelope",
    )
    if all_native:
        yield accepted
        return
    validate = _validator(rules, kinds)
    # A point with a record of its own (``point_record``) is that record's point 0.
    index = F.when(F.col("point_record"), F.lit(0)).otherwise(F.col("kafka_index"))
    verdict = cast(Column, validate(F.col("raw_bytes"), F.col("received_ms"), index, F.col("ums_frame")))
    slow = checked.where(~F.col("native_valid")).withColumn("verdict", verdict)
    # A record refused whole is one row: its first, with no index (it is no point's).
    slow = slow.where(~F.col("verdict.whole") | (F.col("kafka_index") == 0))
    judged = slow.select(
        *kept,
        F.when(~F.col("verdict.whole"), F.col("kafka_index")).alias("kafka_index"),
        "verdict.reason",
        "verdict.detail",
        F.when(F.col("verdict.reason").isNull(), _last_tag_wins(F.col("envelope"))).alias("envelope"),
    ).persist()
    try:
        yield accepted.unionByName(judged)
    finally:
        judged.unpersist()
