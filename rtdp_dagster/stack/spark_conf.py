"""Spark configuration shared by every Spark of the platform (the Spark Connect server, the stream).

It lives beside the jars it loads: the stack starts the Spark Connect server with it, and the stream,
above the stack, reuses it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.jars import spark_jar_paths

# Left set by a parent that used Spark Connect (a test session, a Dagster run); a process that starts
# a classic driver of its own must not see them.
SPARK_CONNECT_VARIABLES = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")


def classic_driver_env(environ: Mapping[str, str]) -> dict[str, str]:
    """environ without the Spark Connect variables: for a child that starts a classic Spark driver."""
    return {name: value for name, value in environ.items() if name not in SPARK_CONNECT_VARIABLES}


def platform_conf(settings: Settings) -> dict[str, str]:
    """Delta Lake, the Kafka connector and the platform's own functions from the resolved jars, UTC,
    folders under the run folder; in the cluster profile, the executors each application gets."""
    return {
        **_common_conf(settings),
        **(standalone_app_conf(settings) if settings.stack.clustered else {}),
    }


def standalone_app_conf(settings: Settings) -> dict[str, str]:
    """An application's share of the standalone cluster: an executor on each worker, bounded, so the
    Spark Connect server and the stream run side by side instead of one waiting for the other's cores."""
    spark = settings.stack.spark_standalone
    return {
        "spark.executor.memory": spark.executor_memory,
        "spark.executor.cores": str(spark.executor_cores),
        "spark.cores.max": str(spark.app_max_cores),
        # Python work on the executors (pandas UDFs, foreachBatch helpers) in this project's interpreter.
        "spark.pyspark.python": sys.executable,
    }


def _common_conf(settings: Settings) -> dict[str, str]:
    return {
        "spark.jars": ",".join(str(jar) for jar in spark_jar_paths(settings.jars_dir)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.run_dir / "spark-warehouse"),
        "spark.driver.host": settings.stack.bind_host,
        "spark.driver.bindAddress": settings.stack.bind_host,
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta replays its log with 50 tasks by default: far too many for small tables on 2 cores.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.ui.showConsoleProgress": "false",
        # A JSON object with a repeated key keeps the last one, as Python's JSON readers do
        # (Spark's default raises, failing a whole micro-batch over one odd record).
        "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
        # On, the optimizer gives each field read from a from_json its own pruned from_json: the
        # stream's checks read a dozen fields, and each record was parsed a dozen times (5x slower).
        "spark.sql.optimizer.enableJsonExpressionOptimization": "false",
    }
