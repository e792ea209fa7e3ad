"""`rtdp config show|reference`: the effective configuration and its generated reference."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings
from rtdp_dagster.config_reference import markdown, write_reference


def register(commands: Commands) -> None:
    config = commands.add_parser("config", help="inspect the configuration")
    actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="print the validated configuration as JSON").set_defaults(handler=show)
    reference_parser = actions.add_parser(
        "reference", help="write the configuration reference (markdown) generated from the configuration model"
    )
    reference_parser.add_argument("--output", default="docs/configuration.md", help="file to write, or - for stdout")
    reference_parser.set_defaults(handler=reference)


def show(settings: Settings, _: argparse.Namespace) -> int:
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def reference(_: Settings, args: argparse.Namespace) -> int:
    if args.output == "-":
        print(markdown(), end="")
    else:
        print(f"wrote {write_reference(Path(args.output))}")
    return 0
