"""Metric kinds in Spark: the same patterns and bounds as ``MetricKinds`` in Python (one rule set).

Shared by the stream's parsing and the batch quality checks, so it sits below both.

Each pattern's regex is the one Python matches with (``MetricKinds.regexes``), tried in the same
order, so a metric gets the same kind in the stream's validation and in the batch checks.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from rtdp_dagster.envelope.metric_kinds import MetricKinds


def first_match(metric: Column, rules: list[tuple[str, Column]], default: Column) -> Column:
    """The value of the first (regex, value) rule whose regex the metric matches, else default."""
    result = default
    for regex, value in reversed(rules):
        result = F.when(metric.rlike(regex), value).otherwise(result)
    return result


def kind_column(metric: Column, kinds: MetricKinds) -> Column:
    """The kind name of each row's metric."""
    return first_match(metric, [(regex, F.lit(kind)) for regex, kind in kinds.regexes()], F.lit(kinds.default_kind))


def _by_kind(kind: Column, kinds: MetricKinds, attribute: str, cast: str) -> Column:
    result = F.lit(None).cast(cast)
    for name, definition in kinds.kinds.items():
        result = F.when(kind == name, F.lit(getattr(definition, attribute)).cast(cast)).otherwise(result)
    return result


def kind_bounds(metric: Column, kinds: MetricKinds) -> tuple[Column, Column]:
    """The lowest and highest value the metric's kind allows (null: no bound)."""
    kind = kind_column(metric, kinds)
    return _by_kind(kind, kinds, "min", "double"), _by_kind(kind, kinds, "max", "double")


def out_of_range(metric: Column, value: Column, kinds: MetricKinds) -> Column:
    """True where a value lies outside its metric kind's bounds (NaN included); null values are not judged."""
    low, high = kind_bounds(metric, kinds)
    outside = (low.isNotNull() & (value < low)) | (high.isNotNull() & (value > high)) | F.isnan(value)
    return value.isNotNull() & F.coalesce(outside, F.lit(False))


def is_counter(metric: Column, kinds: MetricKinds) -> Column:
    counters = [name for name, definition in kinds.kinds.items() if definition.counter]
    return kind_column(metric, kinds).isin(counters) if counters else F.lit(False)
