"""`rtdp stream`: the speed layer in the foreground until SIGTERM (what the stack runs as a service)."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading

from rtdp_dagster.cli.command import CommandError, Commands
from rtdp_dagster.config import Settings
from rtdp_dagster.logs import log_to_file


def register(commands: Commands) -> None:
    stream_parser = commands.add_parser(
        "stream",
        help="the speed layer: Kafka -> quarantine/bronze (Delta) and -> realtime TSDB (SIGTERM stops cleanly)",
    )
    stream_parser.add_argument(
        "--once", action="store_true", help="process what is on Kafka now, then exit (availableNow)"
    )
    stream_parser.set_defaults(handler=stream)


def stream(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.streaming.app import StreamError, run_stream

    log_file = log_to_file(settings.run_dir, "stream")
    print(f"stream: {'draining Kafka once' if args.once else 'running'}, log {log_file}", file=sys.stderr)
    stop = stop_on_signals(math.ceil(settings.stack.stop_timeout_s + 30))
    try:
        totals = run_stream(settings, stop, once=args.once)
    except StreamError as exc:
        raise CommandError(f"stream: {exc}") from None
    print(json.dumps(totals, indent=1, sort_keys=True))
    return 0


def stop_on_signals(grace_s: int) -> threading.Event:
    """An event SIGTERM or SIGINT sets; the process is terminated grace_s seconds after the first.

    A signal sent to the whole process group also stops the JVM, maybe in the middle of a
    micro-batch, and py4j calls into it may then never return. The checkpoint and the tagged Delta
    commits make a forced exit safe: a restart redoes the unfinished batch. The deadline is the
    kernel's (SIGALRM, whose default action terminates), not a thread's: a handler that starts a
    thread or takes a lock can deadlock with the code it interrupted.
    """
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        if not stop.is_set():
            signal.alarm(grace_s)
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return stop
