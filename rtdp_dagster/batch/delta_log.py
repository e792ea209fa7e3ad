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


def _versions(files: TableFiles) -> list[int]:
    """The commit versions in the log, ascending."""
    if not files.is_dir(_LOG):
        return []
    # Commit files are <20-digit version>.json; checkpoints, checksums and temporary files are not.
    return sorted(
        int(stem)
        for stem, dot, extension in (name.partition(".") for name in files.names(_LOG))
        if dot and extension == "json" and stem.isdigit()
    )


def latest_version(table_path: str, storage_options: dict[str, Any] | None = None) -> int:
    """The newest commit version of the table (-1 without one): a reader that resolves the table
    afterwards sees at least this version."""
    versions = _versions(TableFiles(table_path, storage_options))
    return versions[-1] if versions else -1


def days_added_by_version(
    table_path: str, after_version: int, limit: int, storage_options: dict[str, Any] | None = None
) -> dict[int, set[str]]:
    """Event dates of the files added by each commit after after_version (at most limit commits)."""
    files = TableFiles(table_path, storage_options)
    versions = [version for version in _versions(files) if version > after_version]
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
