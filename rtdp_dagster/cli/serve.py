"""`rtdp serve`: the query router in the foreground (what the stack runs as a service)."""

from __future__ import annotations

import argparse
import sys

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings


def register(commands: Commands) -> None:
    serve_parser = commands.add_parser(
        "serve", help="the query router: OpenTSDB HTTP API over the realtime TSDB and the rollups (for Grafana)"
    )
    serve_parser.add_argument("--host", help="address to bind (default: serve.host)")
    serve_parser.add_argument("--port", type=int, help="port to bind (default: serve.port)")
    serve_parser.set_defaults(handler=serve)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.serving.server import serve as serve_router

    host, port = args.host or settings.serve.host, settings.serve.port if args.port is None else args.port
    print(
        f"query router (OpenTSDB API) on http://{host}:{port}, realtime {settings.tsdb.realtime.url}, "
        f"history {settings.tsdb.history.url}",
        file=sys.stderr,
    )
    serve_router(settings, host, port)
    return 0
