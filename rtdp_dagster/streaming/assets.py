"""The speed layer in the asset graph: tables the stream writes, and a check on its heartbeat.

`rtdp stream` runs outside Dagster (a long-running Spark application), so its outputs are
external assets; the heartbeat check runs every five minutes and fails loudly when the stream is
silent, instead of dashboards quietly going flat.
"""

import time

import dagster as dg

from rtdp_dagster.dagster_common import OWNERS
from rtdp_dagster.heartbeat import read_heartbeat
from rtdp_dagster.resources.platform import PlatformConfigResource

kafka_points = dg.AssetSpec(
    "kafka_points",
    group_name="ingestion",
    owners=OWNERS,
    kinds={"kafka"},
    description="Envelopes on the rtdp.points.* topics, published by `rtdp ingest` (wave 1) and the wave 2/3 jobs; "
    "key = series key, one point per record.",
)
bronze = dg.AssetSpec(
    "bronze",
    deps=[kafka_points],
    group_name="speed_layer",
    owners=OWNERS,
    kinds={"spark", "delta"},
    description="Every valid Kafka record exactly once (by topic/partition/offset), partitioned by event date, "
    "duplicates and corrections kept: the master dataset the batch layer recomputes from. Written by `rtdp stream`.",
)
quarantine = dg.AssetSpec(
    "quarantine",
    deps=[kafka_points],
    group_name="speed_layer",
    owners=OWNERS,
    kinds={"spark", "delta"},
    description="Kafka records that are not valid envelopes or points, with the raw value, the reason and their "
    "Kafka coordinates. Written by `rtdp stream`.",
)
realtime_tsdb = dg.AssetSpec(
    "realtime_tsdb",
    deps=[kafka_points],
    group_name="speed_layer",
    owners=OWNERS,
    kinds={"spark", "opentsdb"},
    description="Fresh points (14 days) in the realtime VictoriaMetrics, de-duplicated within the watermark and "
    "enriched with master data. Written by `rtdp stream`.",
)
stream_progress = dg.AssetSpec(
    "stream_progress",
    group_name="speed_layer",
    owners=OWNERS,
    kinds={"spark", "delta"},
    description="Per micro-batch: rates, duration, watermark, Kafka lag, quarantined, de-duplicated, late for "
    "realtime, TSDB writes and failures.",
)


@dg.asset_check(
    asset=bronze.key,
    name="stream_heartbeat_fresh",
    description="The stream wrote a heartbeat recently (stream.heartbeat_stale_s).",
)
def stream_heartbeat_fresh(platform: PlatformConfigResource) -> dg.AssetCheckResult:
    settings = platform.settings()
    beat = read_heartbeat(settings.run_dir / "stream" / "heartbeat.json")
    if beat is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"problem": "no heartbeat: is the stream running?"},
        )
    age_s = time.time() - float(beat.get("at", 0))
    queries = beat.get("queries", {})
    return dg.AssetCheckResult(
        passed=age_s < settings.stream.heartbeat_stale_s,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "heartbeat_age_s": round(age_s, 1),
            "stale_after_s": settings.stream.heartbeat_stale_s,
            "kafka_lag": max((int(q.get("kafka_lag", 0)) for q in queries.values()), default=0),
            "last_batch": {name: q.get("batch_id") for name, q in queries.items()},
            "totals": dg.MetadataValue.json(beat.get("totals", {})),
        },
    )


stream_health_job = dg.define_asset_job(
    "stream_health_job",
    selection=dg.AssetSelection.checks(stream_heartbeat_fresh),
    description="Checks that the stream is alive.",
)
