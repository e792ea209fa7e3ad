"""The stream's own Spark application: a long-running job gets its own driver, as on a cluster."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.class_archive import with_driver_archive
from rtdp_dagster.stack.jars import require_spark_jars
from rtdp_dagster.stack.spark_conf import SPARK_CONNECT_VARIABLES, platform_conf

# The dedup state lives off the JVM heap, so the driver's memory does not grow with it.
ROCKSDB_STATE_STORE = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def stream_conf(settings: Settings) -> dict[str, str]:
    """The stream application's Spark configuration: the platform's, the stream's own keys, then
    `spark.conf`; JVM options are joined, not replaced (class archive, `stream.java_options`, `spark.conf`)."""
    conf = {
        **platform_conf(settings),
        "spark.driver.memory": settings.stream.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.stream.shuffle_partitions),
        "spark.local.dir": str(settings.run_dir / "spark-tmp-stream"),
        # The Spark Connect server owns the UI port; the stream's progress goes to Delta and the TSDB.
        "spark.ui.enabled": "false",
        # Each micro-batch's Kafka records are cached once and read twice (realtime rows, bronze);
        # compressing the cache costs more CPU than the memory it saves is worth here.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB_STATE_STORE,
        **settings.spark.conf,
    }
    for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
        options = " ".join([*settings.stream.java_options, conf.get(key, "")]).strip()
        if options:
            conf[key] = options
    return with_driver_archive(conf, settings)


def stream_session(settings: Settings) -> SparkSession:
    require_spark_jars(settings.jars_dir, "stream")
    # This process needs a classic driver of its own, whatever a parent left set.
    for variable in SPARK_CONNECT_VARIABLES:
        os.environ.pop(variable, None)
    # Python workers (validation, TSDB writes) run in this project's interpreter.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder.appName("rtdp-stream").master(settings.stream.master)
    for key, value in stream_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
