"""Which event days each bronze commit touched, read from the Delta transaction log itself.

Cheap (no Spark): every commit file lists the files it added with their partition values.
Files re-written by a compaction are not arrivals and are left out.
"""

from __future__ import annotations

import json
from pathlib import Path


def days_added_by_version(table_path: str, after_version: int, limit: int) -> dict[int, set[str]]:
    """Event dates of the files added by each commit after after_version (at most limit commits)."""
    log_dir = Path(table_path) / "_delta_log"
    if not log_dir.is_dir():
        return {}
    versions = sorted(int(p.stem) for p in log_dir.glob("*.json") if p.stem.isdigit() and int(p.stem) > after_version)
    found: dict[int, set[str]] = {}
    for version in versions[:limit]:
        days: set[str] = set()
        for line in (log_dir / f"{version:020d}.json").read_text().splitlines():
            action = json.loads(line)
            # dataChange=false: a compaction (OPTIMIZE) rewrote rows already there, nothing arrived.
            if "add" in action and action["add"].get("dataChange", True):
                day = action["add"].get("partitionValues", {}).get("event_date")
                if day:
                    days.add(day)
        found[version] = days
    return found
