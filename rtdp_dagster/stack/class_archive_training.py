"""The training run behind the driver's class archive (``class_archive``): a classic Spark driver with the
platform's configuration does what every driver does first, and its JVM writes the classes it loaded
to the archive when it exits.

``python -m rtdp_dagster.stack.class_archive_training ARCHIVE RUN_DIR JARS_DIR``
"""

from __future__ import annotations

import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.spark_conf import platform_conf


def train(archive: Path, run_dir: Path, jars_dir: Path) -> None:
    settings = Settings.model_validate({"run_dir": str(run_dir), "jars_dir": str(jars_dir)})
    builder = SparkSession.builder.appName("rtdp-class-archive").master("local[2]")
    conf = {
        **platform_conf(settings),
        "spark.ui.enabled": "false",
        "spark.local.dir": str(run_dir / "spark-tmp"),
        "spark.driver.extraJavaOptions": f"-XX:ArchiveClassesAtExit={archive}",
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    source, target = str(run_dir / "delta" / "source"), str(run_dir / "delta" / "target")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS delta.`{source}` (series STRING, ts BIGINT, value DOUBLE, day DATE)"
        " USING DELTA PARTITIONED BY (day)"
    )
    spark.sql(f"SHOW TBLPROPERTIES delta.`{source}`").collect()
    spark.sql(f"DESCRIBE DETAIL delta.`{source}`").first()
    rows = spark.range(1000).select(
        F.concat(F.lit("s"), (F.col("id") % 7).cast("string")).alias("series"),
        F.col("id").alias("ts"),
        F.rand().alias("value"),
        F.current_date().alias("day"),
    )
    rows.write.format("delta").mode("append").save(source)
    # A micro-batch as the stream runs one: a streaming read, foreachBatch, a Delta append.
    query = (
        spark.readStream.format("delta")
        .load(source)
        .writeStream.foreachBatch(lambda batch, _: batch.write.format("delta").mode("append").save(target))
        .option("checkpointLocation", str(run_dir / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    spark.read.format("delta").load(target).groupBy("series").agg(F.avg("value")).collect()
    spark.stop()


if __name__ == "__main__":
    train(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
