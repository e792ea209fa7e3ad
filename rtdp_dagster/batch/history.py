"""Publishing a rollup level's partitions to the history TSDB (replacing them exactly)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.tsdb.history import AGGREGATES, delete_partition, rollup_points
from rtdp_dagster.tsdb.put import http_put


def publish_partitions(
    frame: DataFrame, level: str, parts: Sequence[tuple[str, int, int]], query_url: str, put_http_url: str
) -> int:
    """Replace these partitions (key, start ms, end ms) of a level: delete their history series, then
    write the frame's rows inside them, each under its partition's ``part``; returns points written.

    One Spark job for all of them (a backfill's whole range), the puts running next to the data
    (mapInPandas on the Spark workers), not through the driver.
    """
    if not parts:
        return 0
    for key, _, _ in parts:
        delete_partition(query_url, level, key)
    ordered = sorted(parts, key=lambda part: part[1])
    starts, keys = [part[1] for part in ordered], [part[0] for part in ordered]

    def put(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        written = 0
        for chunk in frames:
            points = []
            for row in chunk.to_dict("records"):
                bucket_start = int(row["bucket_start"])
                part = keys[bisect.bisect_right(starts, bucket_start) - 1]
                values = {name: row[name] for name in AGGREGATES}
                points += rollup_points(row["metric"], dict(row["tags"]), bucket_start, level, part, values)
            if points:
                written += http_put(put_http_url, points)
        yield pd.DataFrame({"written": [written]})

    inside = F.lit(False)
    for _, start_ms, end_ms in parts:
        inside = inside | ((F.col("bucket_start") >= start_ms) & (F.col("bucket_start") < end_ms))
    columns = ["metric", "tags", "bucket_start", *[F.col(n).cast("double").alias(n) for n in AGGREGATES]]
    rows = frame.where(inside).select(*columns)
    total = rows.mapInPandas(put, "written long").agg(F.sum("written")).first()  # type: ignore[arg-type]
    return int(total[0] or 0) if total else 0
