"""The expectation suites, defined in code and versioned.

Schema suites run on the partition's Spark DataFrame through Great Expectations' Spark data
source: they need only the schema (no Spark job). Every other suite runs on a per-series profile
(``profiles``) through the pandas data source: GX's Spark engine does work with our Spark Connect
DataFrames, but it runs several Spark jobs per expectation (a seven-expectation suite took 10 s
on 2,000 rows here), while one profile pass judges a day of millions of points in one job.

Each expectation names the check it belongs to (``meta["check"]``) and the profile column whose
sum is that check's failing-row count (``meta["count_column"]``). A suite's version is
``SUITE_VERSION`` plus a hash of its expectations (thresholds included), shown with every result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import types as T

from rtdp_dagster.config import QualityConfig
from rtdp_dagster.quality.profiles import POINT_RULES

# Bump when what a suite checks changes in a way its thresholds do not show.
SUITE_VERSION = 1


@dataclass(frozen=True)
class ExpectationDef:
    """One expectation: its GX class name and arguments, the check it serves, the column it counts."""

    check: str
    type: str
    kwargs: dict[str, Any]
    count_column: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    engine: Literal["spark", "pandas"]
    expectations: list[ExpectationDef] = field(default_factory=list)
    # Profile columns identifying a failing row in GX's results and the Data Docs.
    index_columns: tuple[str, ...] = ("series_key",)

    @property
    def version(self) -> str:
        content = json.dumps([(e.check, e.type, e.kwargs) for e in self.expectations], sort_keys=True, default=str)
        return f"{SUITE_VERSION}-{hashlib.sha256(content.encode()).hexdigest()[:10]}"

    @property
    def checks(self) -> list[str]:
        return list(dict.fromkeys(e.check for e in self.expectations))


def _zero(check: str, column: str, count_column: str | None = None) -> ExpectationDef:
    kwargs = {"column": column, "min_value": 0, "max_value": 0}
    return ExpectationDef(check, "ExpectColumnValuesToBeBetween", kwargs, count_column or column)


def schema_suite(dataset: str, schema: T.StructType) -> Suite:
    """Exactly these columns, each of its Spark type."""
    names = [f.name for f in schema.fields]
    columns = {"column_set": names, "exact_match": True}
    expectations = [ExpectationDef("schema", "ExpectTableColumnsToMatchSet", columns)]
    expectations += [
        ExpectationDef("schema", "ExpectColumnValuesToBeOfType", {"column": f.name, "type_": type(f.dataType).__name__})
        for f in schema.fields
    ]
    return Suite(f"{dataset}_schema", "spark", expectations, index_columns=())


def points_suite(dataset: str, quality: QualityConfig) -> Suite:
    """Per series: no null keys, no point outside the partition's day, values inside their kind's range;
    in silver also unique point keys, one row per series and time, counters that only decrease at
    resets, and completeness: the missing share within the configured limit and no gap longer than
    gap_factor cadences."""
    rules = ["keys_not_null", "in_partition_day", "value_range"]
    if dataset == "silver":
        rules += ["point_key_unique", "series_time_unique", "counter_monotonic"]
    expectations = [_zero(rule, POINT_RULES[rule]) for rule in rules]
    if dataset == "silver":
        share = {"column": "missing_share", "min_value": 0, "max_value": quality.max_missing_share}
        expectations += [
            ExpectationDef("completeness", "ExpectColumnValuesToBeBetween", share, "missing"),
            _zero("completeness", "gaps", "missing"),
        ]
    return Suite(f"{dataset}_points", "pandas", expectations)


def rollup_suite(level: str, comparisons: list[str]) -> Suite:
    """Per series: every bucket has count > 0 and min <= avg <= max (``valid``); and for each comparison
    (``finer``: the next finer level rolled up, ``silver``: silver aggregated) no bucket differs."""
    expectations = [_zero("valid", "zero_counts", "invalid_buckets"), _zero("valid", "disordered", "invalid_buckets")]
    expectations += [_zero(f"matches_{prefix}", f"{prefix}_mismatched") for prefix in comparisons]
    return Suite(f"rollup_{level}", "pandas", expectations)
