"""`rtdp master validate|load`: the master data files, checked and written into their Delta table."""

from __future__ import annotations

import argparse

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings
from rtdp_dagster.master_data import load_master_data
from rtdp_dagster.master_data.files import version_folder_name


def register(commands: Commands) -> None:
    master = commands.add_parser("master", help="master data: servers, sites, applications and topology")
    actions = master.add_subparsers(dest="master_command", required=True, metavar="ACTION")
    load_parser = actions.add_parser(
        "load", help="validate the master data files and write them into the Delta table (idempotent per version)"
    )
    validate_parser = actions.add_parser("validate", help="validate the master data files (no Spark)")
    for action in (load_parser, validate_parser):
        action.add_argument("--dir", help="folder of version folders v0001, v0002, ... (default: master_data.dir)")
    load_parser.add_argument("--version", type=int, help="load only this version (default: every version)")
    load_parser.set_defaults(handler=load)
    validate_parser.set_defaults(handler=validate)


def validate(settings: Settings, args: argparse.Namespace) -> int:
    data = load_master_data(args.dir or settings.master_data.dir)
    for item in data.versions:
        print(
            f"master {version_folder_name(item.version)}: valid, {len(item.servers)} hosts, {len(item.sites)} sites, "
            f"{len(item.applications)} apps, valid from {item.manifest.valid_from.isoformat()}"
        )
    return 0


def load(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.master_data.load import load_into_delta, summary_lines
    from rtdp_dagster.spark.session import connect

    # Validate every version before touching Spark: a bad file costs no session.
    data = load_master_data(args.dir or settings.master_data.dir)
    spark = connect(settings)
    result = load_into_delta(spark, settings.delta.table_path(settings.master_data.table), data, args.version)
    print("\n".join(summary_lines(result)))
    return 0
