"""`rtdp smoke`: a few points through Kafka, Spark, Delta and the realtime TSDB."""

from __future__ import annotations

import argparse

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings


def register(commands: Commands) -> None:
    smoke_parser = commands.add_parser(
        "smoke", help="produce points to Kafka, read them with Spark into Delta, write them to the realtime TSDB"
    )
    smoke_parser.add_argument(
        "--points", type=int, default=1000, help="number of points to push through (default 1000)"
    )
    smoke_parser.set_defaults(handler=smoke)


def smoke(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.smoke.flow import format_summary, run_smoke

    print(format_summary(run_smoke(settings, points=args.points), settings))
    return 0
