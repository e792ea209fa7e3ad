"""`rtdp ingest` (wave 1, continuously) and `rtdp collection status`: collecting the sources into Kafka."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import signal
import sys
import threading

from rtdp_dagster.cli.command import CommandError, Commands
from rtdp_dagster.collection.locks import AlreadyRunning, exclusive
from rtdp_dagster.collection.sources.factory import build_source
from rtdp_dagster.config import Settings
from rtdp_dagster.logs import log_to_file
from rtdp_dagster.text_table import format_table
from rtdp_dagster.wall_clock import now_ms


def register(commands: Commands) -> None:
    ingest_parser = commands.add_parser(
        "ingest", help="wave 1: collect every enabled source continuously into Kafka (SIGTERM stops cleanly)"
    )
    ingest_parser.add_argument("--source", action="append", help="only this source (repeatable); default: all enabled")
    ingest_parser.add_argument("--once", action="store_true", help="collect every window up to now, then exit")
    ingest_parser.set_defaults(handler=ingest)

    collection = commands.add_parser("collection", help="inspect collection: windows, waves, the collection log")
    actions = collection.add_subparsers(dest="collection_command", required=True, metavar="ACTION")
    actions.add_parser(
        "status", help="per source and wave: windows done and pending, rows read, new and dead-lettered"
    ).set_defaults(handler=status)


def ingest(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.collection.ingest import IngestService, SourceRunner
    from rtdp_dagster.collection.state import CollectionState

    configs = [c for c in settings.collection.sources if c.enabled and (not args.source or c.name in args.source)]
    unknown = set(args.source or []) - {c.name for c in settings.collection.sources}
    if unknown:
        raise CommandError(
            f"ingest: unknown source(s) {sorted(unknown)}; configured: {[c.name for c in settings.collection.sources]}"
        )
    if not configs:
        raise CommandError("ingest: no enabled sources in collection.sources")
    log_file = log_to_file(settings.run_dir, "ingest")
    print(f"ingest: {len(configs)} source(s), log {log_file}", file=sys.stderr)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    state = CollectionState(settings.collection.state_url)
    runners = [
        SourceRunner(
            build_source(c, settings.nab_data_dir),
            c.namespace,
            c.waves.window_s,
            c.waves.max_window_s,
            settings,
            state,
            stop,
            now_ms,
            history_s=c.waves.history_s,
        )
        for c in configs
    ]
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
        raise CommandError(f"ingest: {exc}") from None
    finally:
        state.dispose()
    return 0


def _utc(ms: int | None) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def status(settings: Settings, _: argparse.Namespace) -> int:
    from rtdp_dagster.collection.state import CollectionState

    state = CollectionState(settings.collection.state_url)
    rows = state.summary()
    state.dispose()
    header = ("SOURCE", "WAVE", "WINDOWS", "PENDING", "READ", "NEW", "DEAD-LETTERED", "COVERED UNTIL (UTC)")
    print(
        format_table(
            header,
            [
                (
                    r["source"],
                    r["wave"],
                    r["windows"],
                    r["pending"],
                    r["rows_read"],
                    r["rows_new"],
                    r["rows_dead_lettered"],
                    _utc(r["covered_until"]),
                )
                for r in rows
            ],
        )
    )
    return 0
