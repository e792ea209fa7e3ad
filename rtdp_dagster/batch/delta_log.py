"""Which event days each bronze commit touched, read from the Delta transaction log itself.

Cheap (no Spark): every commit file lists the files it added with their partition values.
Files re-written by a compaction are not arrivals and are left out. The log is read through
fsspec (``table_storage``), so a table on an object store reads as one in a local folder.
"""

from __future__ import annotations

import json
from typing import Any

from rtdp_dagster.table_storage import TableFiles

_LOG = "_delta_log"


def days_added_by_version(
    table_path: str, after_version: int, limit: int, storage_options: dict[str, Any] | None = None
) -> dict[int, set[str]]:
    """Event dates of the files added by each commit after after_version (at most limit commits)."""
    files = TableFiles(table_path, storage_options)
    if not files.is_dir(_LOG):
        return {}
    # Commit files are <20-digit version>.json; checkpoints, checksums and temporary files are not.
    versions = sorted(
        int(stem)
        for stem, dot, extension in (name.partition(".") for name in files.names(_LOG))
        if dot and extension == "json" and stem.isdigit() and int(stem) > after_version
    )
    found: dict[int, set[str]] = {}
    for version in versions[:limit]:
        days: set[str] = set()
        for line in files.read_text(f"{_LOG}/{version:020d}.json").splitlines():
            action = json.loads(line)
            # dataChange=false: a compaction (OPTIMIZE) rewrote rows already there, nothing arrived.
            if "add" in action and action["add"].get("dataChange", True):
                day = action["add"].get("partitionValues", {}).get("event_date")
                if day:
                    days.add(day)
        found[version] = days
    return found
