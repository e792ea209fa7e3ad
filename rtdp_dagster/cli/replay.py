"""`rtdp replay`: Kappa replay of a Kafka time range into bronze and quarantine."""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings


def register(commands: Commands) -> None:
    replay_parser = commands.add_parser(
        "replay", help="Kappa replay: re-read a Kafka time range into bronze/quarantine, adding only missing records"
    )
    replay_parser.add_argument(
        "--from",
        dest="start",
        required=True,
        help="start of the Kafka record times (included): ISO-8601 (UTC unless offset) or epoch ms",
    )
    replay_parser.add_argument("--to", dest="end", required=True, help="end of the range (excluded), same forms")
    replay_parser.add_argument(
        "--topic", action="append", help="topic to replay (repeatable); default: every topic of stream.topic_pattern"
    )
    replay_parser.set_defaults(handler=replay)


def replay(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.replay.bronze_replay import replay_time_range
    from rtdp_dagster.replay.offsets import ReplayError, parse_instant
    from rtdp_dagster.spark.session import connect
    from rtdp_dagster.streaming.tables import BRONZE, QUARANTINE

    try:
        start_ms, end_ms = parse_instant(args.start), parse_instant(args.end)
        result = replay_time_range(
            connect(settings),
            settings.kafka,
            settings.validation,
            start_ms=start_ms,
            end_ms=end_ms,
            topics=args.topic or [],
            topic_pattern=settings.stream.topic_pattern,
            bronze_path=settings.delta.table_path(BRONZE),
            quarantine_path=settings.delta.table_path(QUARANTINE),
            app_id=f"rtdp-replay-cli-{uuid.uuid4().hex[:12]}",
            kinds=settings.quality.metric_kinds,
        )
    except ReplayError as exc:
        print(f"rtdp: replay: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.metadata(), indent=1))
    if result.days:
        print(
            "closed days already in silver are re-run by the late-data sensor; backfill any other day", file=sys.stderr
        )
    return 0
