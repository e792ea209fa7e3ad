"""`make bench` / `python -m bench`: run every benchmark scenario, write JSON, plots and a summary."""

from __future__ import annotations

import argparse
import sys

import bench.backfill_drills  # noqa: F401  (adds the drills during a Dagster backfill to DRILLS)
from bench.drills import DRILLS
from bench.results import RESULTS_DIR, write_results
from bench.scenarios.stream import PARTS as STREAM_PARTS
from rtdp_dagster.config import load_settings
from rtdp_dagster.stack import manager

SCENARIOS = ("collection", "collect", "stream", "batch", "query", "dashboards", "driver_start")
# Run only when asked for (`--only drills`): each starts a cluster-profile stack of its own.
ON_REQUEST = ("drills",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run rtdp's benchmarks against the local stack."
    )
    parser.add_argument("--only", choices=SCENARIOS + ON_REQUEST, action="append", help="run only these scenarios")
    parser.add_argument(
        "--drill", choices=list(DRILLS), action="append", help="with --only drills: run only these drills"
    )
    parser.add_argument(
        "--stream-part",
        choices=STREAM_PARTS,
        action="append",
        help="with --only stream: run only these parts (latency at 10k points/s, drain of a backlog, sustained)",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of sustained-rate scenarios")
    args = parser.parse_args(argv)
    settings = load_settings()
    if set(args.only or SCENARIOS) - set(ON_REQUEST):
        manager.up(settings)
    records = []
    for name in args.only or SCENARIOS:
        module = __import__(f"bench.scenarios.{name}", fromlist=["run"])
        extra = {"only": args.drill} if name == "drills" else {"parts": args.stream_part} if name == "stream" else {}
        records += module.run(settings, seconds=args.seconds, **extra)
    latest = write_results(records)
    print((RESULTS_DIR / "summary.md").read_text())
    print(f"results: {latest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
