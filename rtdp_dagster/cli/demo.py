"""`rtdp demo`: the whole platform on the local stack with three workloads, then a summary."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from rtdp_dagster.cli.command import CommandError, Commands
from rtdp_dagster.config import Settings


def register(commands: Commands) -> None:
    demo_parser = commands.add_parser(
        "demo", help="the whole platform on the local stack with three workloads; prints a summary and the URLs"
    )
    demo_parser.add_argument("--duration", type=float, help="exit by itself after this many seconds (default: Ctrl-C)")
    demo_parser.add_argument(
        "--history-days",
        type=float,
        default=2.0,
        help="days of past points the replayed sources bring and the backfill covers (default 2)",
    )
    demo_parser.add_argument("--small", action="store_true", help="a small workload (synthetic fleet at 60 s cadence)")
    demo_parser.add_argument("--summary-json", type=Path, help="also write the summary to this JSON file")
    demo_parser.add_argument("--screenshots", type=Path, help="save screenshots of the Dagster UI into this folder")
    demo_parser.add_argument("--timeout", type=float, default=1800.0, help="give up on a step after this many seconds")
    demo_parser.add_argument(
        "--checks-wait",
        type=float,
        help="seconds the summary waits for asset checks still running, such as those of a day the late-data "
        "sensor re-runs (default 180; 0: list them as not passed yet at once)",
    )
    demo_parser.set_defaults(handler=demo)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C: at once, stopping what it started


def demo(_: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.demo.dagster_api import DagsterApiError
    from rtdp_dagster.demo.run import DemoError, DemoOptions, run_demo

    signal.signal(signal.SIGTERM, _interrupt)
    options = DemoOptions(
        duration_s=args.duration,
        history_days=args.history_days,
        small=args.small,
        summary_file=args.summary_json,
        screenshots=args.screenshots,
        timeout_s=args.timeout,
        checks_wait_s=DemoOptions.checks_wait_s if args.checks_wait is None else args.checks_wait,
    )
    try:
        summary = run_demo(options, log=lambda line: print(line, flush=True))
    except (DemoError, DagsterApiError) as exc:
        raise CommandError(f"demo: {exc}") from None
    return 0 if summary.panels.get("data") == summary.panels.get("total") else 4
