"""The smoke flow as assets: one glance in the UI shows every real component answering."""

import time
import uuid

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from rtdp_dagster.dagster_common import OWNERS
from rtdp_dagster.resources import DeltaTablesResource, KafkaResource, TsdbResource
from rtdp_dagster.smoke import flow

GROUP = "smoke"


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"kafka"},
    description="Produces a batch of synthetic points to the smoke topic, keyed by series.",
)
def smoke_kafka_points(context: dg.AssetExecutionContext, kafka: KafkaResource) -> dg.Output[dict]:
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    start, end = flow.produce(kafka.config(), run_id, points=1000)
    produced = sum(end.values()) - sum(start.values())
    context.log.info(f"smoke run {run_id}: {produced} records acknowledged by Kafka")
    return dg.Output(
        {"run_id": run_id, "start": start, "end": end},
        metadata={"run_id": run_id, "records": produced, "duration_s": round(time.monotonic() - started, 2)},
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"spark", "delta"},
    description="Reads exactly the smoke run's Kafka offsets with Spark and replaces its slice of a Delta table.",
)
def smoke_delta_points(
    smoke_kafka_points: dict, spark: LazyPySparkResource, kafka: KafkaResource, delta: DeltaTablesResource
) -> dg.Output[str]:
    started = time.monotonic()
    run_id = smoke_kafka_points["run_id"]
    path = delta.table_path(flow.SMOKE_TABLE)
    start = {int(p): o for p, o in smoke_kafka_points["start"].items()}
    end = {int(p): o for p, o in smoke_kafka_points["end"].items()}
    rows, version = flow.kafka_to_delta(spark.spark_session, kafka.config(), path, run_id, start, end)
    return dg.Output(
        run_id,
        metadata={
            "rows": rows,
            "delta_version": version,
            "table_path": dg.MetadataValue.path(path),
            "duration_s": round(time.monotonic() - started, 2),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"opentsdb"},
    description="Writes the smoke run's rows to the realtime TSDB over OpenTSDB put and reads them back.",
    check_specs=[dg.AssetCheckSpec("all_points_queryable", asset="smoke_realtime_tsdb")],
)
def smoke_realtime_tsdb(
    smoke_delta_points: str, spark: LazyPySparkResource, delta: DeltaTablesResource, realtime_tsdb: TsdbResource
) -> dg.MaterializeResult:
    started = time.monotonic()
    endpoint = realtime_tsdb.endpoint()
    path = delta.table_path(flow.SMOKE_TABLE)
    written = flow.delta_to_tsdb(spark.spark_session, path, smoke_delta_points, endpoint, realtime_tsdb.timeout_s)
    found = flow.tsdb_count(endpoint, smoke_delta_points, written)
    return dg.MaterializeResult(
        metadata={"written": written, "queryable": found, "duration_s": round(time.monotonic() - started, 2)},
        check_results=[
            dg.AssetCheckResult(
                check_name="all_points_queryable",
                passed=found == written,
                metadata={"written": written, "queryable": found},
            )
        ],
    )


smoke_job = dg.define_asset_job("smoke_job", selection=dg.AssetSelection.groups(GROUP))
