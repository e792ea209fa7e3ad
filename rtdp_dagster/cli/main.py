"""The `rtdp` parser and dispatch. Expected failures print one line and exit 1, never a stack trace."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rtdp_dagster.cli import collection, config, demo, dq, grafana, master, replay, serve, smoke, stack, stream
from rtdp_dagster.cli.command import CommandError, Handler
from rtdp_dagster.config import ConfigError, load_settings
from rtdp_dagster.master_data.errors import MasterDataError
from rtdp_dagster.stack.errors import StackError

# In the order `rtdp --help` lists them.
GROUPS = (stack, collection, stream, config, smoke, demo, master, grafana, serve, replay, dq)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtdp",
        description="rtdp: a Dagster-orchestrated Lambda/Kappa platform for IT-operations time series.",
    )
    parser.add_argument("--config", help="configuration file (default: $RTDP_CONFIG or ./rtdp.yaml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.config:
        # Services started from here (stack up) read the same file.
        os.environ["RTDP_CONFIG"] = str(Path(args.config).resolve())
    handler: Handler = args.handler
    try:
        settings = load_settings(args.config)
        return handler(settings, args)
    except (ConfigError, StackError, MasterDataError, CommandError) as exc:
        print(f"rtdp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rtdp: interrupted", file=sys.stderr)
        return 130
