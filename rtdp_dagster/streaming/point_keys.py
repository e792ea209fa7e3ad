"""The envelope's point_key (``envelope.keys``) computed in the JVM, so the stream verifies a
record's key without sending the record through Python.

The hash, BLAKE2b-128 as hex, is the project's own Java function (``jvm/spark-udf``, on every
Spark's classpath through ``spark.jars``); the string it hashes, ``metric|k=v,...|ums_ts_`` with
the tags sorted by key, is built by Spark's compiled functions.
"""

from __future__ import annotations

import weakref

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

BLAKE2B_128_HEX = "rtdp_blake2b_128_hex"
_JAVA_CLASS = "rtdp.spark.Blake2b128Hex"

# Sessions the function is registered in (a temporary function lives as long as its session).
_registered: weakref.WeakSet[SparkSession] = weakref.WeakSet()


def register_point_key(spark: SparkSession) -> None:
    if spark not in _registered:
        spark.udf.registerJavaFunction(BLAKE2B_128_HEX, _JAVA_CLASS, "string")
        _registered.add(spark)


def point_key_prefix(metric: Column, tags: Column) -> Column:
    """The series part of the string a point_key hashes, ``metric|k=v,...|``: the same for every
    point of a series, so a v2 record builds it once per series group.

    Map keys are unique, so sorting the entries sorts by key; Spark compares strings by their UTF-8
    bytes, which orders them as Python's ``sorted`` does (by code point).
    """
    pairs = F.transform(F.sort_array(F.map_entries(tags)), lambda e: F.concat(e["key"], F.lit("="), e["value"]))
    return F.concat(metric, F.lit("|"), F.array_join(pairs, ","), F.lit("|"))


def point_key_of(prefix: Column, ts_ms: Column) -> Column:
    """The point_key of a point of the series of ``point_key_prefix``. Needs ``register_point_key``."""
    return F.call_udf(BLAKE2B_128_HEX, F.concat(prefix, ts_ms.cast("string")))


def point_key_column(metric: Column, tags: Column, ts_ms: Column) -> Column:
    """``keys.point_key(metric, tags, ts_ms)``; null where any part is null. Needs ``register_point_key``."""
    return point_key_of(point_key_prefix(metric, tags), ts_ms)
