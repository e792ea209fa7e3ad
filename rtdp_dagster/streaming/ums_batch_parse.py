"""Envelope v2 records (UMS batches, docs/envelope-v2.md) read in the JVM: one row per point.

A record is told from a v1 point by its first key (collectors write ``protocol`` first), else by
having a ``protocol`` at all. The project's own Java function (``rtdp.spark.UmsBatchPoints`` in
``jvm/spark-udf``) reads a record in one pass, as Python reads it: whether Python accepts its frame
(``readable``), its series groups and each tuple's values with the native verdict (``ok``: every
check of ``natively_valid`` but the future one, which needs the micro-batch's receive time). It
accepts only what Python surely accepts; anything else it leaves to Python, so the two paths give
one verdict. A frame it cannot read is one row with no envelope, judged whole by Python.

It replaced a reading in Spark SQL (``from_json`` of the frame, the tuples as JSON text split at
their commas, a canonical re-encoding to compare): about 20 us of CPU per point against about 1.
"""

from __future__ import annotations

import json
import weakref

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.envelope.metric_kinds import MetricKinds
from rtdp_dagster.envelope.ums_batch import FIELDS, PROTOCOL_TYPE
from rtdp_dagster.envelope.validation import PointRules

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

BATCH_POINTS = "rtdp_ums_batch_points"
_JAVA_CLASS = "rtdp.spark.UmsBatchPoints"
# What UmsBatchPoints returns per record (its Javadoc says what each field means).
POINTS_TYPE = (
    "struct<readable:boolean,lean:boolean,version:string,namespace:string,source:string,"
    "wave:int,collected_at:bigint,groups:array<struct<metric:string,tags:map<string,string>,"
    "points:array<struct<at:int,ums_id_:bigint,ums_ts_:bigint,ums_op_:string,point_key:string,"
    "value:double,ok:boolean,tuple_json:string>>>>>"
)

# Sessions the function is registered in (a temporary function lives as long as its session).
_registered: weakref.WeakSet[SparkSession] = weakref.WeakSet()


def is_ums_batch(raw_value: Column) -> Column:
    """A v2 record: ``protocol`` first (as collectors write it), or anywhere in a non-v1 record."""
    first_v1 = raw_value.startswith('{"namespace"')
    has_protocol = F.get_json_object(raw_value, "$.protocol").isNotNull()
    return F.coalesce(raw_value.startswith('{"protocol"') | (~first_v1 & has_protocol), F.lit(False))


def ums_points_config(rules: PointRules, kinds: MetricKinds | None) -> str:
    """What ``UmsBatchPoints`` checks with: the record bounds, the point rules (the future aside)
    and each metric kind's regex with its bounds, in matching order (null: no bounds)."""
    config: dict[str, object] = {
        "max_record_bytes": MAX_RECORD_BYTES,
        "max_record_points": MAX_RECORD_POINTS,
        **rules.model_dump(exclude={"max_future_s"}),
        "kinds": None,
    }
    if kinds is not None:

        def bounds(kind: str) -> dict[str, float | None]:
            return {"low": kinds.kinds[kind].min, "high": kinds.kinds[kind].max}

        config["kinds"] = {
            "patterns": [{"regex": regex, **bounds(kind)} for regex, kind in kinds.regexes()],
            "default": bounds(kinds.default_kind),
        }
    return json.dumps(config, sort_keys=True)


def register_ums_points(spark: SparkSession) -> None:
    if spark not in _registered:
        spark.udf.registerJavaFunction(BATCH_POINTS, _JAVA_CLASS, POINTS_TYPE)
        _registered.add(spark)


def ums_points(raw_bytes: Column, rules: PointRules, kinds: MetricKinds | None) -> Column:
    """A record's ``UmsBatchPoints`` reading. Needs ``register_ums_points``."""
    return F.call_udf(BATCH_POINTS, raw_bytes, F.lit(ums_points_config(rules, kinds)))


def frame_head(frame: Column) -> Column:
    """The JSON of a lean record's frame holding one point, up to its payload (see ``point_record``);
    frame: the record's version, namespace, source, wave and collected_at (a lean frame has exactly
    2.0's five fields, so these say all of it that a point's verdict reads)."""
    head = F.struct(
        F.struct(F.lit(PROTOCOL_TYPE).alias("type"), frame.getField("version").alias("version")).alias("protocol"),
        F.struct(
            frame.getField("namespace").alias("namespace"),
            F.array(
                *[
                    F.struct(F.lit(name).alias("name"), F.lit(kind).alias("type"), F.lit(nullable).alias("nullable"))
                    for name, kind, nullable in FIELDS
                ]
            ).alias("fields"),
        ).alias("schema"),
        F.struct(
            *[frame.getField(name).alias(name) for name in ("source", "wave", "collected_at")],
            F.lit(1).alias("points"),
        ).alias("batch"),
    )
    return F.regexp_replace(F.to_json(head, {"ignoreNullFields": "false"}), r"\}\z", "")


def tuple_text(envelope: Column) -> Column:
    """A natively read tuple as JSON, from its envelope (the JVM writes a tuple's text only for the
    points it does not accept; one it accepts may still be refused for its future timestamp)."""
    field = envelope.getField
    value = F.coalesce(field("value").cast("string"), F.lit("null"))
    return F.concat(
        F.lit("["),
        F.concat_ws(",", field("ums_id_").cast("string"), field("ums_ts_").cast("string")),
        F.lit(',"'),
        field("ums_op_"),
        F.lit('","'),
        field("point_key"),
        F.lit('",'),
        value,
        F.lit("]"),
    )


def point_record(head: Column, envelope: Column, tuple_json: Column) -> Column:
    """A point of a lean record as a record of its own: the frame (``frame_head``), its series
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
