"""The `rtdp` command line. Expected failures print one line and exit 1, never a stack trace."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rtdp_dagster.config import ConfigError, Settings, load_settings
from rtdp_dagster.master_data.errors import MasterDataError
from rtdp_dagster.stack.errors import StackError


def _cmd_setup(settings: Settings, _: argparse.Namespace) -> int:
    from rtdp_dagster.stack.dagster_home import ensure_dagster_home
    from rtdp_dagster.stack.jars import resolve_all

    for name, folder in resolve_all(settings.jars_dir).items():
        print(f"{name} jars: {folder}")
    print(f"dagster home: {ensure_dagster_home(settings)}")
    return 0


def _cmd_dagster(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.stack.dagster_home import ensure_dagster_home

    home = ensure_dagster_home(settings)
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    command = [
        str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(workspace),
        "-h", settings.stack.bind_host, "-p", str(settings.dagster.webserver_port),
    ]  # fmt: skip
    print(f"Dagster UI on http://{settings.stack.bind_host}:{settings.dagster.webserver_port} (DAGSTER_HOME={home})")
    os.execve(command[0], command, {**os.environ, "DAGSTER_HOME": str(home)})


def _cmd_stack_up(settings: Settings, _: argparse.Namespace) -> int:
    from rtdp_dagster.stack.manager import format_status, up

    print(format_status(up(settings)))
    return 0


def _cmd_stack_down(settings: Settings, _: argparse.Namespace) -> int:
    from rtdp_dagster.stack.manager import down

    if not down(settings):
        print("nothing of ours was running")
    return 0


def _cmd_stack_status(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.stack.manager import format_status, status

    rows = status(settings)
    if args.json:
        print(json.dumps([{**row.__dict__, "state": row.state} for row in rows], indent=2))
    else:
        print(format_status(rows))
    # Non-zero when anything is not healthy, so scripts can wait on it.
    return 0 if all(row.healthy for row in rows) else 3


def _cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from rtdp_dagster.collection.ingest import IngestService, SourceRunner
    from rtdp_dagster.collection.locks import AlreadyRunning, exclusive
    from rtdp_dagster.collection.sources.factory import build_source
    from rtdp_dagster.collection.state import CollectionState, now_ms
    from rtdp_dagster.logs import log_to_file

    configs = [c for c in settings.collection.sources if c.enabled and (not args.source or c.name in args.source)]
    unknown = set(args.source or []) - {c.name for c in settings.collection.sources}
    if unknown:
        raise StackError(f"ingest: unknown source(s) {sorted(unknown)}; configured: "
                         f"{[c.name for c in settings.collection.sources]}")  # fmt: skip
    if not configs:
        raise StackError("ingest: no enabled sources in collection.sources")
    log_file = log_to_file(settings.run_dir, "ingest")
    print(f"ingest: {len(configs)} source(s), log {log_file}", file=sys.stderr)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    state = CollectionState(settings.collection.state_url)
    runners = [
        SourceRunner(build_source(c, settings.nab_data_dir), c.namespace, c.waves.window_s, c.waves.max_window_s,
                     settings, state, stop, now_ms)
        for c in configs
    ]  # fmt: skip
    service = IngestService(settings, runners, stop)
    try:
        with contextlib.ExitStack() as locks:
            for c in configs:
                locks.enter_context(exclusive(settings.run_dir, c.name, 1))
            if args.once:
                service.run_once()
            else:
                service.run()
    except AlreadyRunning as exc:
        raise StackError(f"ingest: {exc}") from None
    finally:
        state.dispose()
    return 0


def _cmd_stream(settings: Settings, args: argparse.Namespace) -> int:
    import signal
    import threading

    from rtdp_dagster.logs import log_to_file
    from rtdp_dagster.streaming.app import StreamError, run_stream

    log_file = log_to_file(settings.run_dir, "stream")
    print(f"stream: {'draining Kafka once' if args.once else 'running'}, log {log_file}", file=sys.stderr)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        totals = run_stream(settings, stop, once=args.once)
    except StreamError as exc:
        raise StackError(f"stream: {exc}") from None
    print(json.dumps(totals, indent=1, sort_keys=True))
    return 0


def _cmd_collection_status(settings: Settings, _: argparse.Namespace) -> int:
    import datetime as dt

    from rtdp_dagster.collection.state import CollectionState
    from rtdp_dagster.tables import format_table

    state = CollectionState(settings.collection.state_url)
    rows = state.summary()
    state.dispose()

    def when(ms: int | None) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"

    header = ("SOURCE", "WAVE", "WINDOWS", "PENDING", "READ", "NEW", "DEAD-LETTERED", "COVERED UNTIL (UTC)")
    print(format_table(header, [
        (r["source"], r["wave"], r["windows"], r["pending"], r["rows_read"], r["rows_new"],
         r["rows_dead_lettered"], when(r["covered_until"]))
        for r in rows
    ]))  # fmt: skip
    return 0


def _cmd_config_show(settings: Settings, _: argparse.Namespace) -> int:
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def _cmd_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.smoke.flow import format_summary, run_smoke

    print(format_summary(run_smoke(settings, points=args.points), settings))
    return 0


def _cmd_master_validate(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.master_data import load_master_data
    from rtdp_dagster.master_data.files import version_folder_name

    data = load_master_data(args.dir or settings.master_data.dir)
    for item in data.versions:
        print(f"master {version_folder_name(item.version)}: valid, {len(item.servers)} hosts, {len(item.sites)} sites, "
              f"{len(item.applications)} apps, valid from {item.manifest.valid_from.isoformat()}")  # fmt: skip
    return 0


def _cmd_master_load(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.master_data import load_master_data
    from rtdp_dagster.master_data.load import load_into_delta, summary_lines
    from rtdp_dagster.spark.session import connect

    # Validate every version before touching Spark: a bad file costs no session.
    data = load_master_data(args.dir or settings.master_data.dir)
    spark = connect(settings)
    result = load_into_delta(spark, settings.delta.table_path(settings.master_data.table), data, args.version)
    print("\n".join(summary_lines(result)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtdp",
        description="rtdp: a Dagster-orchestrated Lambda/Kappa platform for IT-operations time series.",
    )
    parser.add_argument("--config", help="configuration file (default: $RTDP_CONFIG or ./rtdp.yaml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    setup = commands.add_parser("setup", help="resolve the JVM jars from Maven Central (idempotent)")
    setup.set_defaults(handler=_cmd_setup)

    stack = commands.add_parser("stack", help="start, stop and inspect the local services")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    stack_commands.add_parser(
        "up", help="start Kafka, VictoriaMetrics (realtime, history) and Spark Connect; wait for health"
    ).set_defaults(handler=_cmd_stack_up)
    stack_commands.add_parser("down", help="stop the services this stack started").set_defaults(handler=_cmd_stack_down)
    status = stack_commands.add_parser("status", help="table of services, pids, ports and health")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(handler=_cmd_stack_status)

    dagster = commands.add_parser("dagster", help="run the Dagster webserver and daemon on the rtdp code location")
    dagster.set_defaults(handler=_cmd_dagster)

    ingest = commands.add_parser(
        "ingest", help="wave 1: collect every enabled source continuously into Kafka (SIGTERM stops cleanly)"
    )
    ingest.add_argument("--source", action="append", help="only this source (repeatable); default: all enabled")
    ingest.add_argument("--once", action="store_true", help="collect every window up to now, then exit")
    ingest.set_defaults(handler=_cmd_ingest)

    stream = commands.add_parser(
        "stream",
        help="the speed layer: Kafka -> quarantine/bronze (Delta) and -> realtime TSDB (SIGTERM stops cleanly)",
    )
    stream.add_argument("--once", action="store_true", help="process what is on Kafka now, then exit (availableNow)")
    stream.set_defaults(handler=_cmd_stream)

    collection = commands.add_parser("collection", help="inspect collection: windows, waves, the collection log")
    collection_commands = collection.add_subparsers(dest="collection_command", required=True, metavar="ACTION")
    collection_commands.add_parser(
        "status", help="per source and wave: windows done and pending, rows read, new and dead-lettered"
    ).set_defaults(handler=_cmd_collection_status)

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_commands.add_parser("show", help="print the validated configuration as JSON").set_defaults(
        handler=_cmd_config_show
    )

    smoke = commands.add_parser(
        "smoke", help="produce points to Kafka, read them with Spark into Delta, write them to the realtime TSDB"
    )
    smoke.add_argument("--points", type=int, default=1000, help="number of points to push through (default 1000)")
    smoke.set_defaults(handler=_cmd_smoke)

    master = commands.add_parser("master", help="master data: servers, sites, applications and topology")
    master_commands = master.add_subparsers(dest="master_command", required=True, metavar="ACTION")
    master_load = master_commands.add_parser(
        "load", help="validate the master data files and write them into the Delta table (idempotent per version)"
    )
    master_validate = master_commands.add_parser("validate", help="validate the master data files (no Spark)")
    for action in (master_load, master_validate):
        action.add_argument("--dir", help="folder of version folders v0001, v0002, ... (default: master_data.dir)")
    master_load.add_argument("--version", type=int, help="load only this version (default: every version)")
    master_load.set_defaults(handler=_cmd_master_load)
    master_validate.set_defaults(handler=_cmd_master_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.config:
        # Services started from here (stack up) read the same file.
        os.environ["RTDP_CONFIG"] = str(Path(args.config).resolve())
    handler: Callable[[Settings, argparse.Namespace], int] = args.handler
    try:
        settings = load_settings(args.config)
        return handler(settings, args)
    except (ConfigError, StackError, MasterDataError) as exc:
        print(f"rtdp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rtdp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
