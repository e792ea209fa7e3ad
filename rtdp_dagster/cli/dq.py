"""`rtdp dq reconcile|check`: the quality suites and the reconciliation of a day from the command line
(what the Dagster checks run), printed as tables; exit code 2 when something fails."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from rtdp_dagster.cli.command import Commands
from rtdp_dagster.config import Settings


def register(commands: Commands) -> None:
    dq = commands.add_parser("dq", help="data quality: the suites and the reconciliation of a day (exit 2 on failure)")
    actions = dq.add_subparsers(dest="dq_command", required=True, metavar="ACTION")
    reconcile_parser = actions.add_parser(
        "reconcile", help="counts from the collection log to the realtime TSDB, every difference explained"
    )
    reconcile_parser.add_argument("--day", help="UTC day YYYY-MM-DD (default: yesterday)")
    reconcile_parser.add_argument("--no-realtime", action="store_true", help="skip the realtime TSDB comparison")
    reconcile_parser.add_argument("--json", action="store_true", help="machine-readable output")
    reconcile_parser.set_defaults(handler=reconcile)
    check_parser = actions.add_parser("check", help="run the bronze or silver suites on a day (Data Docs HTML)")
    check_parser.add_argument("dataset", choices=["bronze", "silver"])
    check_parser.add_argument("--day", help="UTC day YYYY-MM-DD (default: yesterday)")
    check_parser.set_defaults(handler=check)


def _day(text: str | None) -> dt.date:
    return dt.date.fromisoformat(text) if text else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.quality.reconciliation import reconcile_day
    from rtdp_dagster.spark.session import connect

    result = reconcile_day(connect(settings), settings, _day(args.day), realtime=not args.no_realtime)
    if args.json:
        stages = [stage.__dict__ for stage in result.stages]
        print(json.dumps({"day": result.day, "passed": result.passed, "stages": stages}, indent=1))
    else:
        print(f"reconciliation of {result.day}: {'passed' if result.passed else 'UNEXPLAINED DIFFERENCES'}")
        print(result.markdown())
    return 0 if result.passed else 2


def check(settings: Settings, args: argparse.Namespace) -> int:
    from rtdp_dagster.master_data.table import read_table
    from rtdp_dagster.quality.evaluate import points_checks
    from rtdp_dagster.spark.session import connect

    day = _day(args.day)
    table = read_table(connect(settings), settings.delta.table_path(args.dataset))
    if table is None:
        print(f"rtdp: dq: no {args.dataset} table at {settings.delta.table_path(args.dataset)}")
        return 1
    outcomes = points_checks(table, args.dataset, day, settings, f"cli-{args.dataset}-{day.isoformat()}")
    for o in outcomes:
        state = "pass" if o.passed else f"FAIL ({o.severity})"
        print(f"{o.asset}.{o.check:<18} {state:<14} failing rows {o.failing_rows:>8}  series {o.failing_series:>5}")
    pages = sorted({o.docs_page for o in outcomes if o.docs_page})
    print("data docs: " + ", ".join(pages))
    return 0 if all(o.passed for o in outcomes) else 2
