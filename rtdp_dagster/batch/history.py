"""Publishing a rollup level's partition to the history TSDB (replacing it exactly)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rtdp_dagster.tsdb.history import AGGREGATES, delete_partition, rollup_points
from rtdp_dagster.tsdb.put import http_put


def publish_partition(frame: DataFrame, level: str, part: str, query_url: str, put_http_url: str) -> int:
    """Delete the partition's history series, then write the frame's rows; returns points written.

    The puts run next to the data (mapInPandas on the Spark workers), not through the driver.
    """
    delete_partition(query_url, level, part)

    def put(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        written = 0
        for chunk in frames:
            points = []
            for row in chunk.to_dict("records"):
                values = {name: row[name] for name in AGGREGATES}
                points += rollup_points(row["metric"], dict(row["tags"]), int(row["bucket_start"]), level, part, values)
            if points:
                written += http_put(put_http_url, points)
        yield pd.DataFrame({"written": [written]})

    columns = ["metric", "tags", "bucket_start", *[F.col(n).cast("double").alias(n) for n in AGGREGATES]]
    total = frame.select(*columns).mapInPandas(put, "written long").agg(F.sum("written")).first()  # type: ignore[arg-type]
    return int(total[0] or 0) if total else 0
