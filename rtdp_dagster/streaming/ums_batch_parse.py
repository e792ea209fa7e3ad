"""Envelope v2 records (UMS batches, docs/envelope-v2.md) read in the JVM: one row per point.

A record is told from a v1 point by its first key (collectors write ``protocol`` first), else by
having a ``protocol`` at all. Its frame is parsed with one explicit schema; each tuple is kept as
its JSON text (Spark writes a nested array read as a string back as JSON, strings quoted, numbers
bare), so the JVM can tell a number from a string the way Python does.

A record becomes its points by two explodes (``parse.parsed_records``): its ``series_groups``,
then each group's tuples. Each point gets its typed envelope (``point_envelope``) and whether it is
*canonical*: the frame is exactly the canonical encoding of what Spark parsed (so every field has
the JSON type Python reads) and the tuple is five elements of the right JSON types. Only a canonical
point may be accepted natively; the others go to Python. A frame the JVM cannot read is one row
with no envelope, judged whole by Python.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.schema import SCHEMA_VERSION
from rtdp_dagster.envelope.ums_batch import FIELDS, PROTOCOL_MAJOR, PROTOCOL_TYPE
from rtdp_dagster.spark.metric_kinds import kind_bounds
from rtdp_dagster.streaming.point_keys import point_key_prefix
from rtdp_dagster.streaming.tables import ENVELOPE_SCHEMA

# The largest record a collector may be configured to write (collection.ums_batch.max_bytes), and
# the most points a record of that size can hold: a record beyond either is refused whole.
MAX_RECORD_BYTES = 1_000_000
MAX_RECORD_POINTS = 20_000
OVERSIZE_BATCH = "oversize_batch"

UMS_BATCH_SCHEMA = T.StructType(
    [
        T.StructField(
            "protocol", T.StructType([T.StructField("type", T.StringType()), T.StructField("version", T.StringType())])
        ),
        T.StructField(
            "schema",
            T.StructType(
                [
                    T.StructField("namespace", T.StringType()),
                    T.StructField(
                        "fields",
                        T.ArrayType(
                            T.StructType(
                                [
                                    T.StructField("name", T.StringType()),
                                    T.StructField("type", T.StringType()),
                                    T.StructField("nullable", T.BooleanType()),
                                ]
                            )
                        ),
                    ),
                ]
            ),
        ),
        T.StructField(
            "batch",
            T.StructType(
                [
                    T.StructField("source", T.StringType()),
                    T.StructField("wave", T.IntegerType()),
                    T.StructField("collected_at", T.LongType()),
                    T.StructField("points", T.IntegerType()),
                ]
            ),
        ),
        T.StructField(
            "payload",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("metric", T.StringType()),
                        T.StructField("tags", T.MapType(T.StringType(), T.StringType())),
                        T.StructField("tuples", T.ArrayType(T.StringType())),  # each tuple's JSON text
                    ]
                )
            ),
        ),
    ]
)

# A tuple as Spark writes it back: two integers, op and point_key as strings, a number or null.
# Its strings hold no quote, backslash or comma, so splitting it at its commas reads it exactly.
_TUPLE = r'^\[-?[0-9]+,-?[0-9]+,"[^"\\,]*","[^"\\,]*",(null|-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)\]\z'
# The tuples of a canonical record (scalars only), blanked to compare the rest of the frame.
_TUPLES = r'"tuples":\[\[[^\[\]{}]*\](,\[[^\[\]{}]*\])*\]'
_VERSION = rf"^{PROTOCOL_MAJOR}\.[0-9]+\z"
_FIRST_FIELDS = [f"{name}:{kind}" for name, kind, _ in FIELDS]
_JSON_OPTIONS = {"allowNonNumericNumbers": "false"}  # NaN is not JSON: Python refuses it too


# A metric or tag name or value, as Java regex; \z (not $) so a trailing line break is never accepted.
NAME = r"^[A-Za-z0-9._/-]+\z"


def _longest(names: Column) -> Column:
    return F.aggregate(names, F.lit(0), lambda longest, name: F.greatest(longest, F.length(name)))


def series_facts(metric: Column, tags: Column, kinds: MetricKinds | None = None) -> Column:
    """What the native point checks need of a series (``parse.natively_valid``): the point_key's
    series prefix, whether its names are well formed with distinct tag keys, the longest name, and
    the bounds of its metric's kind (``low``, ``high``; null: none, or no kinds given). A v2 record
    computes it once per series group, not once per point: the kind is a chain of regexes over the
    metric name. Null where a name is null."""
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


def is_ums_batch(raw_value: Column) -> Column:
    """A v2 record: ``protocol`` first (as collectors write it), or anywhere in a non-v1 record."""
    first_v1 = raw_value.startswith('{"namespace"')
    has_protocol = F.get_json_object(raw_value, "$.protocol").isNotNull()
    return F.coalesce(raw_value.startswith('{"protocol"') | (~first_v1 & has_protocol), F.lit(False))


def parsed_batch(raw_value: Column) -> Column:
    return F.from_json(raw_value, UMS_BATCH_SCHEMA, _JSON_OPTIONS)


def _all(checks: list[Column]) -> Column:
    verdict = checks[0]
    for check in checks[1:]:
        verdict = verdict & check
    return F.coalesce(verdict, F.lit(False))


def frame_readable(batch: Column, size_bytes: Column) -> Column:
    """The record's structure holds as ``ums_batch.read_frame`` requires, and it is not oversized."""
    protocol, schema, origin, payload = (batch.getField(name) for name in ("protocol", "schema", "batch", "payload"))
    fields = schema.getField("fields")
    names = F.transform(fields, lambda field: field["name"])
    typed = F.transform(fields, lambda field: F.concat(field["name"], F.lit(":"), field["type"]))
    points = origin.getField("points")
    total = F.aggregate(payload, F.lit(0), lambda acc, group: acc + F.size(group["tuples"]))
    return _all(
        [
            batch.isNotNull(),
            protocol.getField("type") == PROTOCOL_TYPE,
            protocol.getField("version").rlike(_VERSION),
            schema.getField("namespace").isNotNull(),
            F.size(fields) >= len(FIELDS),
            F.forall(names, lambda name: name.isNotNull()),
            F.size(F.array_distinct(names)) == F.size(names),
            F.slice(typed, 1, len(FIELDS)) == F.array(*[F.lit(item) for item in _FIRST_FIELDS]),
            *[origin.getField(name).isNotNull() for name in ("source", "wave", "collected_at")],
            payload.isNotNull() & (F.size(payload) > 0),
            F.forall(
                payload,
                lambda group: (
                    group["metric"].isNotNull()
                    & group["tags"].isNotNull()
                    & group["tuples"].isNotNull()
                    & (F.size(group["tuples"]) > 0)
                ),
            ),
            points == total,
            points <= MAX_RECORD_POINTS,
            size_bytes <= MAX_RECORD_BYTES,
        ]
    )


def frame_canonical(batch: Column, raw_value: Column) -> Column:
    """The record, tuples aside, is exactly the canonical encoding of what Spark parsed from it."""
    groups = F.transform(
        batch.getField("payload"),
        lambda group: F.struct(
            group["metric"].alias("metric"),
            group["tags"].alias("tags"),
            F.array().cast("array<string>").alias("tuples"),
        ),
    )
    frame = F.struct(
        batch.getField("protocol").alias("protocol"),
        batch.getField("schema").alias("schema"),
        batch.getField("batch").alias("batch"),
        groups.alias("payload"),
    )
    canonical = F.to_json(frame, {"ignoreNullFields": "false"})
    return F.coalesce(F.regexp_replace(raw_value, _TUPLES, '"tuples":[]') == canonical, F.lit(False))


def frame_fields(batch: Column) -> Column:
    """What every point of a record shares, as a small struct: carried to the points in place of the
    record (an explode copies what it carries once per output row)."""
    schema, origin = batch.getField("schema"), batch.getField("batch")
    return F.struct(
        schema.getField("namespace").alias("namespace"),
        *[origin.getField(name).alias(name) for name in ("source", "wave", "collected_at")],
    )


def group_starts(batch: Column) -> Column:
    """The index in the record of each series group's first tuple: a column of its own, computed once
    per record (inside ``series_groups``' lambda it would be computed once per group)."""
    sizes = F.transform(batch.getField("payload"), lambda group: F.size(group["tuples"]))
    empty = F.array().cast("array<int>")
    return F.aggregate(
        sizes,
        F.struct(F.lit(0).alias("total"), empty.alias("starts")),
        lambda acc, size: F.struct(
            (acc["total"] + size).alias("total"), F.concat(acc["starts"], F.array(acc["total"])).alias("starts")
        ),
    ).getField("starts")


def series_groups(batch: Column, starts: Column) -> Column:
    """A record's series groups (metric, tags, tuples), each with ``start`` (its ``group_starts``).
    Exploded, then their tuples exploded: generators, which Spark compiles, where per-tuple work
    inside higher-order functions (``transform``) runs interpreted and cost ten times the rest of
    the parse. The functions here run once per record or group, not per tuple."""
    return F.transform(
        batch.getField("payload"),
        lambda group, at: F.struct(
            group["metric"].alias("metric"),
            group["tags"].alias("tags"),
            group["tuples"].alias("tuples"),
            F.get(starts, at).alias("start"),
        ),
    )


def tuple_is_plain(text: Column) -> Column:
    """A tuple of the canonical shape (``_TUPLE``): read by splitting it at its commas."""
    return text.rlike(_TUPLE)


def tuple_values(text: Column, plain: Column) -> Column:
    """A tuple's elements as strings (a short tuple gives nulls later); plain: its ``tuple_is_plain``.
    A plain tuple is split at its commas: a JSON parser per tuple cost more than the rest of its
    parsing. A column of its own: inside the envelope's conditional, Spark would evaluate it once
    per field it feeds (common subexpressions are not shared across the branches of a CASE)."""
    split = F.split(F.regexp_replace(text, r'^\[|\]\z|"', ""), ",")
    return F.when(plain, split).otherwise(F.from_json(text, "array<string>"))


def point_envelope(frame: Column, metric: Column, tags: Column, values: Column) -> Column:
    """One tuple's envelope (``ENVELOPE_SCHEMA``), read by position from its ``tuple_values``;
    frame: the record's ``frame_fields``."""
    return F.struct(
        frame.getField("namespace").alias("namespace"),
        metric.alias("metric"),
        tags.alias("tags"),
        F.get(values, 4).try_cast("double").alias("value"),
        F.get(values, 1).try_cast("long").alias("ums_ts_"),
        F.get(values, 3).alias("point_key"),
        F.get(values, 0).try_cast("long").alias("ums_id_"),
        F.get(values, 2).alias("ums_op_"),
        frame.getField("wave").alias("wave"),
        frame.getField("source").alias("source"),
        frame.getField("collected_at").alias("collected_at"),
        F.lit(SCHEMA_VERSION).alias("schema_version"),
    ).cast(ENVELOPE_SCHEMA)


def frame_head(batch: Column) -> Column:
    """The JSON of a canonical record's frame holding one point, up to its payload (see ``point_record``)."""
    origin = batch.getField("batch")
    head = F.struct(
        batch.getField("protocol").alias("protocol"),
        batch.getField("schema").alias("schema"),
        F.struct(
            *[origin.getField(name).alias(name) for name in ("source", "wave", "collected_at")],
            F.lit(1).alias("points"),
        ).alias("batch"),
    )
    return F.regexp_replace(F.to_json(head, {"ignoreNullFields": "false"}), r"\}\z", "")


def point_record(head: Column, envelope: Column, tuple_json: Column) -> Column:
    """A point of a canonical record as a record of its own: the frame (``frame_head``), its series
    and its tuple. Python judges such a point from it (index 0) as it would in the whole record:
    the frame is the same and a point's checks look only at the frame, its series and its tuple.
    Carrying the whole record to every exploded point instead copied it once per point."""
    series = F.to_json(F.struct(envelope.getField("metric").alias("metric"), envelope.getField("tags").alias("tags")))
    group = F.regexp_replace(series, r"\}\z", "")
    return F.concat(head, F.lit(',"payload":['), group, F.lit(',"tuples":['), tuple_json, F.lit("]}]}")).cast("binary")


def point_json(envelope: Column, tuple_json: Column) -> Column:
    """What quarantine keeps of a refused v2 point: its identity and its tuple, not the whole record.

    Built from the candidate's envelope after the explode, so that only the rows that need it (those
    Python judges) pay for it."""
    field = envelope.getField
    identity = F.to_json(
        F.struct(
            *[
                field(name).alias(name)
                for name in ("namespace", "metric", "tags", "ums_ts_", "source", "wave", "collected_at")
            ]
        )
    )
    return F.concat(F.regexp_replace(identity, r"\}\z", ""), F.lit(',"tuple":'), tuple_json, F.lit("}"))
