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
    from rtdp_dagster.stack.services import dagster_command

    home = ensure_dagster_home(settings)
    command = dagster_command(settings)
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
                     settings, state, stop, now_ms, history_s=c.waves.history_s)
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
    import logging
    import signal
    import threading

    from rtdp_dagster.logs import log_to_file
    from rtdp_dagster.streaming.app import StreamError, run_stream

    log_file = log_to_file(settings.run_dir, "stream")
    print(f"stream: {'draining Kafka once' if args.once else 'running'}, log {log_file}", file=sys.stderr)
    stop = threading.Event()
    grace_s = settings.stack.stop_timeout_s + 30

    def force_exit() -> None:
        logging.getLogger("rtdp.stream").error("stream: not stopped %.0f s after the signal; exiting", grace_s)
        os._exit(1)

    def on_signal(*_: object) -> None:
        if stop.is_set():
            return
        stop.set()
        # A signal sent to the whole process group also stops the JVM, maybe in the middle of a
        # micro-batch, and py4j calls into it may then never return. The checkpoint and the
        # tagged Delta commits make a forced exit safe: a restart redoes the unfinished batch.
        watchdog = threading.Timer(grace_s, force_exit)
        watchdog.daemon = True
        watchdog.start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
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


def _cmd_config_reference(_: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.config_reference import markdown, write_reference

    if args.output == "-":
        print(markdown(), end="")
    else:
        print(f"wrote {write_reference(Path(args.output))}")
    return 0


def _cmd_smoke(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.smoke.flow import format_summary, run_smoke

    print(format_summary(run_smoke(settings, points=args.points), settings))
    return 0


def _cmd_demo(_: Settings, args: argparse.Namespace) -> int:
    import signal

    from rtdp_dagster.demo.dagster_api import DagsterApiError
    from rtdp_dagster.demo.run import DemoError, DemoOptions, run_demo

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C: at once, stopping what it started

    signal.signal(signal.SIGTERM, interrupt)
    options = DemoOptions(duration_s=args.duration, history_days=args.history_days, small=args.small,
                          summary_file=args.summary_json, screenshots=args.screenshots,
                          timeout_s=args.timeout)  # fmt: skip
    try:
        summary = run_demo(options, log=lambda line: print(line, flush=True))
    except (DemoError, DagsterApiError) as exc:
        raise StackError(f"demo: {exc}") from None
    return 0 if summary.panels.get("data") == summary.panels.get("total") else 4


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


def _grafana_router_url(settings: Settings, override: str | None) -> str:
    from rtdp_dagster.grafana.router_url import RouterUrlError, router_url

    try:
        return router_url(settings, override)
    except RouterUrlError as exc:
        raise ConfigError(str(exc)) from None


def _cmd_grafana_build(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.grafana.build import GRAFANA_DIR, stale_files, write_files

    if args.check:
        stale = stale_files()
        if stale:
            print(f"rtdp: {GRAFANA_DIR} differs from the code: {', '.join(stale)}; run `rtdp grafana build`",
                  file=sys.stderr)  # fmt: skip
            return 1
        print(f"{GRAFANA_DIR}: up to date")
        return 0
    for path in write_files():
        print(path)
    return 0


def _cmd_grafana_publish(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.grafana.build import committed_dashboards
    from rtdp_dagster.grafana.publish import PublishError, publish

    url = args.url or settings.grafana.url
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    try:
        actions = publish(url, token, _grafana_router_url(settings, args.router_url), committed_dashboards(),
                          settings.grafana.timeout_s)  # fmt: skip
    except PublishError as exc:
        print(f"rtdp: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        print(f"{action.kind} {action.uid}: {action.outcome}")
    return 0


def _cmd_grafana_verify(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.grafana.verify import DATA, VerifyError, format_results, results_json, verify

    try:
        results = verify(_grafana_router_url(settings, args.router_url), timeout_s=args.timeout)
    except VerifyError as exc:
        print(f"rtdp: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results_json(results), indent=2) if args.json else format_results(results))
    # Non-zero when any panel shows no data or an error.
    return 0 if all(result.status == DATA for result in results) else 3


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.serving.server import serve

    host, port = args.host or settings.serve.host, settings.serve.port if args.port is None else args.port
    print(f"query router (OpenTSDB API) on http://{host}:{port}, realtime {settings.tsdb.realtime.url}, "
          f"history {settings.tsdb.history.url}", file=sys.stderr)  # fmt: skip
    serve(settings, host, port)
    return 0


def _cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    import uuid

    from rtdp_dagster.replay.bronze_replay import replay_time_range
    from rtdp_dagster.replay.offsets import ReplayError, parse_instant
    from rtdp_dagster.spark.session import connect
    from rtdp_dagster.streaming.tables import BRONZE, QUARANTINE

    try:
        start_ms, end_ms = parse_instant(args.start), parse_instant(args.end)
        result = replay_time_range(
            connect(settings), settings.kafka, settings.validation, start_ms=start_ms, end_ms=end_ms,
            topics=args.topic or [], topic_pattern=settings.stream.topic_pattern,
            bronze_path=settings.delta.table_path(BRONZE), quarantine_path=settings.delta.table_path(QUARANTINE),
            app_id=f"rtdp-replay-cli-{uuid.uuid4().hex[:12]}", kinds=settings.quality.metric_kinds,
        )  # fmt: skip
    except ReplayError as exc:
        print(f"rtdp: replay: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.metadata(), indent=1))
    if result.days:
        print("closed days already in silver are re-run by the late-data sensor; backfill any other day",
              file=sys.stderr)  # fmt: skip
    return 0


def _cmd_dq_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.quality.commands import reconcile

    return reconcile(settings, args)


def _cmd_dq_check(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.quality.commands import check

    return check(settings, args)


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
    reference = config_commands.add_parser(
        "reference", help="write the configuration reference (markdown) generated from the configuration model"
    )
    reference.add_argument("--output", default="docs/configuration.md", help="file to write, or - for stdout")
    reference.set_defaults(handler=_cmd_config_reference)

    smoke = commands.add_parser(
        "smoke", help="produce points to Kafka, read them with Spark into Delta, write them to the realtime TSDB"
    )
    smoke.add_argument("--points", type=int, default=1000, help="number of points to push through (default 1000)")
    smoke.set_defaults(handler=_cmd_smoke)

    demo = commands.add_parser(
        "demo", help="the whole platform on the local stack with three workloads; prints a summary and the URLs"
    )
    demo.add_argument("--duration", type=float, help="exit by itself after this many seconds (default: Ctrl-C)")
    demo.add_argument(
        "--history-days",
        type=float,
        default=2.0,
        help="days of past points the replayed sources bring and the backfill covers (default 2)",
    )
    demo.add_argument("--small", action="store_true", help="a small workload (synthetic fleet at 60 s cadence)")
    demo.add_argument("--summary-json", type=Path, help="also write the summary to this JSON file")
    demo.add_argument("--screenshots", type=Path, help="save screenshots of the Dagster UI into this folder")
    demo.add_argument("--timeout", type=float, default=1800.0, help="give up on a step after this many seconds")
    demo.set_defaults(handler=_cmd_demo)

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

    grafana = commands.add_parser("grafana", help="dashboards as code: build, publish to a Grafana, verify panels")
    grafana_commands = grafana.add_subparsers(dest="grafana_command", required=True, metavar="ACTION")
    grafana_build = grafana_commands.add_parser(
        "build", help="write grafana/dashboards/*.json and the provisioning files from the Python dashboards"
    )
    grafana_build.add_argument("--check", action="store_true", help="only check that grafana/ matches the code")
    grafana_build.set_defaults(handler=_cmd_grafana_build)
    grafana_publish = grafana_commands.add_parser(
        "publish", help="create or update the router data source, the rtdp folder and the dashboards (by uid)"
    )
    grafana_publish.add_argument("--url", help="Grafana base URL (default: grafana.url)")
    grafana_publish.add_argument("--token", help="Grafana service-account token (default: $GRAFANA_TOKEN)")
    grafana_verify = grafana_commands.add_parser(
        "verify", help="send every panel's query to the router as Grafana would; table of data / no data / error"
    )
    grafana_verify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    grafana_verify.add_argument("--timeout", type=float, default=30.0, help="seconds per router request (default 30)")
    for action in (grafana_publish, grafana_verify):
        action.add_argument("--router-url", help="the query router's URL (default: grafana.router_url, else local)")
    grafana_publish.set_defaults(handler=_cmd_grafana_publish)
    grafana_verify.set_defaults(handler=_cmd_grafana_verify)
    serve = commands.add_parser(
        "serve", help="the query router: OpenTSDB HTTP API over the realtime TSDB and the rollups (for Grafana)"
    )
    serve.add_argument("--host", help="address to bind (default: serve.host)")
    serve.add_argument("--port", type=int, help="port to bind (default: serve.port)")
    serve.set_defaults(handler=_cmd_serve)
    replay = commands.add_parser(
        "replay", help="Kappa replay: re-read a Kafka time range into bronze/quarantine, adding only missing records"
    )
    replay.add_argument(
        "--from",
        dest="start",
        required=True,
        help="start of the Kafka record times (included): ISO-8601 (UTC unless offset) or epoch ms",
    )
    replay.add_argument("--to", dest="end", required=True, help="end of the range (excluded), same forms")
    replay.add_argument(
        "--topic", action="append", help="topic to replay (repeatable); default: every topic of stream.topic_pattern"
    )
    replay.set_defaults(handler=_cmd_replay)

    dq = commands.add_parser("dq", help="data quality: the suites and the reconciliation of a day (exit 2 on failure)")
    dq_commands = dq.add_subparsers(dest="dq_command", required=True, metavar="ACTION")
    dq_reconcile = dq_commands.add_parser(
        "reconcile", help="counts from the collection log to the realtime TSDB, every difference explained"
    )
    dq_reconcile.add_argument("--day", help="UTC day YYYY-MM-DD (default: yesterday)")
    dq_reconcile.add_argument("--no-realtime", action="store_true", help="skip the realtime TSDB comparison")
    dq_reconcile.add_argument("--json", action="store_true", help="machine-readable output")
    dq_reconcile.set_defaults(handler=_cmd_dq_reconcile)
    dq_check = dq_commands.add_parser("check", help="run the bronze or silver suites on a day (Data Docs HTML)")
    dq_check.add_argument("dataset", choices=["bronze", "silver"])
    dq_check.add_argument("--day", help="UTC day YYYY-MM-DD (default: yesterday)")
    dq_check.set_defaults(handler=_cmd_dq_check)
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
