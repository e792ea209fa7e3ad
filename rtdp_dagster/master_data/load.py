"""Loading validated master data versions into the Delta table, idempotently, in one commit.

Loading version N replaces exactly the rows of version N (``replaceWhere version IN (N)``).
Validity ranges follow the versions in the table after the load: N ends where the next loaded
version starts, and the loaded version just before N gets its ``valid_to_ms`` moved to N's
``valid_from_ms`` in the same commit (its rows are copied from the table, not re-read from the
files), so a reader never sees two versions valid at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.master_data.errors import MasterDataError
from rtdp_dagster.master_data.files import version_folder_name
from rtdp_dagster.master_data.models import MasterData, MasterVersion
from rtdp_dagster.master_data.table import PARTITION_COLUMN, SCHEMA, host_rows, loaded_versions, read_table
from rtdp_dagster.spark.session import delta_version


@dataclass(frozen=True)
class VersionWritten:
    version: int
    valid_from_ms: int
    valid_to_ms: int | None
    # None when the version's rows were kept from the table and only valid_to_ms moved.
    hosts: int | None
    sites: int | None = None
    apps: int | None = None


@dataclass(frozen=True)
class LoadResult:
    path: str
    versions: list[VersionWritten]
    delta_version: int


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chosen(data: MasterData, only: int | None) -> list[MasterVersion]:
    if only is None:
        return list(data.versions)
    try:
        return [data.get(only)]
    except KeyError:
        have = ", ".join(version_folder_name(item.version) for item in data.versions)
        raise MasterDataError(f"{data.directory}: no version {only} (found {have})") from None


def _check_timeline(path: str, starts: dict[int, int], from_files: set[int], data: MasterData) -> None:
    """Versions in the table and those being loaded must still start one after the other."""
    order = sorted(starts)
    for before, after in itertools.pairwise(order):
        if starts[after] <= starts[before]:

            def origin(version: int) -> str:
                return f"{data.directory}/{version_folder_name(version)}" if version in from_files else path

            raise MasterDataError(
                f"{origin(after)}: version {after} starts at {_iso(starts[after])}, not after version {before} "
                f"({origin(before)}) at {_iso(starts[before])}"
            )


def _valid_to(ends: dict[int, int | None], versions: list[int]) -> Column:
    expression = F.lit(None).cast("long")
    for version in versions:
        expression = F.when(F.col(PARTITION_COLUMN) == version, F.lit(ends[version]).cast("long")).otherwise(expression)
    return expression


def load_into_delta(spark: SparkSession, path: str, data: MasterData, only: int | None = None) -> LoadResult:
    """Write every version of data (or only that one) into the Delta table at path, in one commit."""
    chosen = _chosen(data, only)
    table = read_table(spark, path)
    existing = loaded_versions(table)
    starts = {version: valid_from for version, (valid_from, _) in existing.items()}
    starts.update({item.version: item.valid_from_ms for item in chosen})
    loading = {item.version for item in chosen}
    _check_timeline(path, starts, loading, data)
    order = sorted(starts)
    ends: dict[int, int | None] = {version: starts[after] for version, after in itertools.pairwise(order)}
    ends[order[-1]] = None
    restamped = sorted(v for v, (_, valid_to) in existing.items() if v not in loading and valid_to != ends[v])

    rows = [row for item in chosen for row in host_rows(item, ends[item.version])]
    frame = spark.createDataFrame(rows, SCHEMA)
    if restamped and table is not None:
        kept = table.where(F.col(PARTITION_COLUMN).isin(restamped)).withColumn(
            "valid_to_ms", _valid_to(ends, restamped)
        )
        frame = frame.unionByName(kept)
    replaced = sorted(loading | set(restamped))
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{PARTITION_COLUMN} IN ({', '.join(map(str, replaced))})")
        .option("userMetadata", json.dumps({"master_data": {"loaded": sorted(loading), "restamped": restamped}}))
        .partitionBy(PARTITION_COLUMN)
        .save(path)
    )
    written = [
        VersionWritten(
            item.version,
            item.valid_from_ms,
            ends[item.version],
            len(item.servers),
            len(item.sites),
            len(item.applications),
        )
        for item in chosen
    ] + [VersionWritten(version, starts[version], ends[version], None) for version in restamped]
    return LoadResult(path, sorted(written, key=lambda item: item.version), delta_version(spark, path))


def summary_lines(result: LoadResult) -> list[str]:
    """One line per version written, for the command line."""
    lines = []
    for item in result.versions:
        until = f"until {_iso(item.valid_to_ms)}" if item.valid_to_ms is not None else "(latest)"
        what = (
            f"{item.hosts} hosts, {item.sites} sites, {item.apps} apps loaded"
            if item.hosts is not None
            else "rows kept, only valid_to_ms moved"
        )
        lines.append(
            f"master {version_folder_name(item.version)}: {what}, valid from {_iso(item.valid_from_ms)} {until} "
            f"-> {result.path} (Delta version {result.delta_version})"
        )
    return lines
