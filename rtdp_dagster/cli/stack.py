"""`rtdp setup`, `rtdp stack up|down|status`, `rtdp dagster`: the local services."""

from __future__ import annotations

import argparse
import json
import os

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.stack.class_archive import ensure_archive
from rtdp_dagster.stack.dagster_home import ensure_dagster_home
from rtdp_dagster.stack.jars import resolve_all


def register(commands: Commands) -> None:
    commands.add_parser(
        "setup", help="resolve the JVM jars from Maven Central, make the Spark driver's class archive (idempotent)"
    ).set_defaults(handler=setup)

    stack = commands.add_parser("stack", help="start, stop and inspect the local services")
    actions = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up_parser = actions.add_parser(
        "up",
        help="start Kafka, VictoriaMetrics (realtime, history) and Spark Connect (with --profile cluster: "
        "three Kafka nodes, a Spark master and workers, PostgreSQL); wait for health",
    )
    up_parser.set_defaults(handler=up)
    down_parser = actions.add_parser("down", help="stop the services this stack started")
    down_parser.set_defaults(handler=down)
    status_parser = actions.add_parser("status", help="table of services, pids, ports and health")
    status_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status_parser.set_defaults(handler=status)
    for parser in (up_parser, down_parser, status_parser):
        parser.add_argument(
            "--profile",
            choices=["single", "cluster"],
            help="stack profile for this command (default: stack.profile, single); the same as RTDP_STACK__PROFILE",
        )

    commands.add_parser("dagster", help="run the Dagster webserver and daemon on the rtdp code location").set_defaults(
        handler=dagster
    )


def setup(settings: Settings, _: argparse.Namespace) -> int:
    for name, folder in resolve_all(settings.jars_dir).items():
        print(f"{name} jars: {folder}")
    archive = ensure_archive(settings)
    print(f"Spark driver class archive: {archive or 'none (no java found)'}")
    print(f"dagster home: {ensure_dagster_home(settings)}")
    return 0


def dagster(settings: Settings, _: argparse.Namespace) -> int:
    from rtdp_dagster.config.stack_profile import PASSWORD_ENV
    from rtdp_dagster.stack.services import dagster_command

    home = ensure_dagster_home(settings)
    command = dagster_command(settings)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    if settings.stack.clustered and settings.postgres.password is not None:
        # dagster.yaml reads the storage password from this variable, whichever source set it.
        env[PASSWORD_ENV] = settings.postgres.password.get_secret_value()
    print(f"Dagster UI on http://{settings.stack.bind_host}:{settings.dagster.webserver_port} (DAGSTER_HOME={home})")
    os.execve(command[0], command, env)


def _with_profile(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings under --profile, if given. Set in the environment, as if exported, so that what
    the profile derives (Kafka nodes, Spark master, PostgreSQL) follows, and services the stack
    starts (the stream, Dagster) see the same profile."""
    if not args.profile:
        return settings
    os.environ["RTDP_STACK__PROFILE"] = args.profile
    return load_settings(os.environ.get("RTDP_CONFIG"))


def up(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.stack import manager

    print(manager.format_status(manager.up(_with_profile(settings, args))))
    return 0


def down(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.stack import manager

    if not manager.down(_with_profile(settings, args)):
        print("nothing of ours was running")
    return 0


def status(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.stack import manager

    rows = manager.status(_with_profile(settings, args))
    if args.json:
        print(json.dumps([{**row.__dict__, "state": row.state} for row in rows], indent=2))
    else:
        print(manager.format_status(rows))
    # Non-zero when anything is not healthy, so scripts can wait on it.
    return 0 if all(row.healthy for row in rows) else 3
