"""The filesystem layer for Delta files read outside Spark, on a local folder and an in-memory store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import fsspec
import pytest

from rtdp_dagster.batch.delta_log import days_added_by_version
from rtdp_dagster.table_storage import TableFiles


def _add(day: str, data_change: bool = True) -> str:
    action = {
        "path": f"event_date={day}/part.parquet",
        "partitionValues": {"event_date": day},
        "dataChange": data_change,
    }
    return json.dumps({"add": action})


# Version -> commit file lines: arrivals on two days, then a compaction (nothing arrived), then one day.
COMMITS = {
    0: [json.dumps({"protocol": {}}), _add("2026-10-01"), _add("2026-10-02")],
    1: [_add("2026-10-01", data_change=False)],
    2: [json.dumps({"commitInfo": {}}), _add("2026-10-03")],
}
# Beside the commits: a checksum, a checkpoint and an unfinished temporary commit, none of them commits.
OTHER_FILES = ["00000000000000000001.crc", "00000000000000000002.checkpoint.parquet", ".00000000000000000003.json.tmp"]


def _write_table(write: Callable[[str, str], None], root: str) -> None:
    for version, lines in COMMITS.items():
        write(f"{root}/_delta_log/{version:020d}.json", "\n".join(lines))
    for name in OTHER_FILES:
        write(f"{root}/_delta_log/{name}", "{not json")


def _local_table(tmp_path: Path) -> str:
    def write(path: str, text: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)

    root = str(tmp_path / "bronze")
    _write_table(write, root)
    return root


EXPECTED = {0: {"2026-10-01", "2026-10-02"}, 1: set(), 2: {"2026-10-03"}}


def test_local_folder_and_file_url_read_alike(tmp_path: Path) -> None:
    root = _local_table(tmp_path)
    assert days_added_by_version(root, -1, 10) == EXPECTED
    assert days_added_by_version(f"file://{root}", -1, 10) == EXPECTED
    assert days_added_by_version(root, 0, 1) == {1: set()}


def test_an_object_store_reads_like_a_folder() -> None:
    # fsspec's in-memory filesystem stands in for s3a:// or abfss:// (same interface, no bucket).
    memory = fsspec.filesystem("memory")
    root = f"memory://rtdp-test-{uuid.uuid4().hex}/delta/bronze"

    def write(path: str, text: str) -> None:
        with memory.open(path, "w") as handle:
            handle.write(text)

    _write_table(write, root)
    assert days_added_by_version(root, -1, 10) == EXPECTED
    # A commit that lands later is seen by the next read (no stale listing).
    write(f"{root}/_delta_log/{3:020d}.json", _add("2026-10-04"))
    assert days_added_by_version(root, 2, 10) == {3: {"2026-10-04"}}


def test_missing_table_or_log_is_empty(tmp_path: Path) -> None:
    assert days_added_by_version(str(tmp_path / "nothing"), -1, 10) == {}
    assert days_added_by_version(f"memory://rtdp-test-{uuid.uuid4().hex}/none", -1, 10) == {}
    files = TableFiles(str(tmp_path / "nothing"))
    assert files.names("_delta_log") == [] and not files.is_dir()


def test_table_files_lists_names_and_reads_text(tmp_path: Path) -> None:
    files = TableFiles(_local_table(tmp_path) + "/")
    assert files.is_dir("_delta_log")
    assert files.names("_delta_log") == sorted(OTHER_FILES + [f"{version:020d}.json" for version in COMMITS])
    assert files.read_text("_delta_log/00000000000000000002.json").endswith('"2026-10-03"}, "dataChange": true}}')


def test_unknown_scheme_is_an_error() -> None:
    with pytest.raises(ValueError, match="nosuchscheme"):
        TableFiles("nosuchscheme://bucket/table")
