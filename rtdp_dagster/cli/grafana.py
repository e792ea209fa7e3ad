"""`rtdp grafana build|publish|verify`: dashboards as code, pushed to a Grafana, every panel checked."""

from __future__ import annotations

import argparse
import json
import os
import sys

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import ConfigError, Settings
from rtdp_dagster.grafana.router_url import RouterUrlError, router_url


def register(commands: Commands) -> None:
    grafana = commands.add_parser("grafana", help="dashboards as code: build, publish to a Grafana, verify panels")
    actions = grafana.add_subparsers(dest="grafana_command", required=True, metavar="ACTION")
    build_parser = actions.add_parser(
        "build", help="write grafana/dashboards/*.json and the provisioning files from the Python dashboards"
    )
    build_parser.add_argument("--check", action="store_true", help="only check that grafana/ matches the code")
    build_parser.set_defaults(handler=build)
    publish_parser = actions.add_parser(
        "publish", help="create or update the router data source, the rtdp folder and the dashboards (by uid)"
    )
    publish_parser.add_argument("--url", help="Grafana base URL (default: grafana.url)")
    publish_parser.add_argument("--token", help="Grafana service-account token (default: $GRAFANA_TOKEN)")
    verify_parser = actions.add_parser(
        "verify", help="send every panel's query to the router as Grafana would; table of data / no data / error"
    )
    verify_parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    verify_parser.add_argument("--timeout", type=float, default=30.0, help="seconds per router request (default 30)")
    for action in (publish_parser, verify_parser):
        action.add_argument("--router-url", help="the query router's URL (default: grafana.router_url, else local)")
    publish_parser.set_defaults(handler=publish)
    verify_parser.set_defaults(handler=verify)


def _router_url(settings: Settings, override: str | None) -> str:
    try:
        return router_url(settings, override)
    except RouterUrlError as exc:
        raise ConfigError(str(exc)) from None


def build(_: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.grafana.build import GRAFANA_DIR, stale_files, write_files

    if args.check:
        stale = stale_files()
        if stale:
            print(
                f"rtdp: {GRAFANA_DIR} differs from the code: {', '.join(stale)}; run `rtdp grafana build`",
                file=sys.stderr,
            )
            return 1
        print(f"{GRAFANA_DIR}: up to date")
        return 0
    for path in write_files():
        print(path)
    return 0


def publish(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.grafana.build import committed_dashboards
    from rtdp_dagster.grafana.publish import PublishError
    from rtdp_dagster.grafana.publish import publish as publish_dashboards

    url = args.url or settings.grafana.url
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    try:
        actions = publish_dashboards(
            url, token, _router_url(settings, args.router_url), committed_dashboards(), settings.grafana.timeout_s
        )
    except PublishError as exc:
        print(f"rtdp: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        print(f"{action.kind} {action.uid}: {action.outcome}")
    return 0


def verify(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.grafana.verify import DATA, VerifyError, format_results, results_json
    from rtdp_dagster.grafana.verify import verify as verify_panels

    try:
        results = verify_panels(_router_url(settings, args.router_url), timeout_s=args.timeout)
    except VerifyError as exc:
        print(f"rtdp: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results_json(results), indent=2) if args.json else format_results(results))
    # Non-zero when any panel shows no data or an error.
    return 0 if all(result.status == DATA for result in results) else 3
