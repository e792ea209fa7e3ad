"""The suites of one day of a dataset: Spark profiles judged by Great Expectations, as check outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.batch.intervals import BUCKET_DATE
from rtdp_dagster.batch.rollups import rollup_points, rollup_rollups
from rtdp_dagster.config import Settings
from rtdp_dagster.quality import suites
from rtdp_dagster.quality.gx_runner import runner_for
from rtdp_dagster.quality.outcomes import CheckOutcome, docs_dir, iso_ms, profile_outcome, schema_outcome
from rtdp_dagster.quality.profiles import POINT_RULES, points_profile, rollup_profile
from rtdp_dagster.streaming.tables import BRONZE_SCHEMA

# The silver contract (batch.silver.SILVER_COLUMNS with their types).
SILVER_SCHEMA = T.StructType(
    [
        T.StructField("metric", T.StringType()),
        T.StructField("tags", T.MapType(T.StringType(), T.StringType())),
        T.StructField("series_key", T.StringType()),
        T.StructField("value", T.DoubleType()),
        T.StructField("ums_ts_", T.LongType()),
        T.StructField("point_key", T.StringType()),
        T.StructField("ums_id_", T.LongType()),
        T.StructField("ums_op_", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("namespace", T.StringType()),
        T.StructField("event_date", T.DateType()),
    ]
)
SCHEMAS = {"bronze": BRONZE_SCHEMA, "silver": SILVER_SCHEMA}


def _readable(profile: pd.DataFrame) -> pd.DataFrame:
    """Example times and buckets as ISO text: the samples are read by people."""
    for column in profile.columns:
        if column.endswith(("_ts", "_bucket")):
            profile[column] = profile[column].map(iso_ms)
    return profile


def _not_evaluated(
    asset: str, checks: list[str], day: str, severities: Mapping[str, str], why: str
) -> list[CheckOutcome]:
    return [CheckOutcome(asset, c, day, False, severities[c], 0, details={"not_evaluated": why}) for c in checks]


def points_checks(
    table: DataFrame, dataset: str, day: dt.date, settings: Settings, run_name: str
) -> list[CheckOutcome]:
    """Schema, key, day and range checks of one day (silver: also uniqueness, counters, completeness).

    table: the whole Delta table (silver's completeness learns cadences from the days before).
    """
    quality = settings.quality
    severities = quality.severities[dataset]
    runner = runner_for(docs_dir(quality, settings.run_dir))
    label = day.isoformat()
    frame = table.where(F.col("event_date") == F.lit(day))
    schema = suites.schema_suite(dataset, SCHEMAS[dataset])
    # Columns and their types are the frame's schema: no pass over the day's rows.
    schema_run = runner.run(schema, frame.limit(0), run_name)
    outcomes = [schema_outcome(schema_run, schema, dataset, label, severities["schema"])]
    suite = suites.points_suite(dataset, quality)
    if not schema_run.success:
        return outcomes + _not_evaluated(dataset, suite.checks, label, severities, "the schema does not match")
    silver = dataset == "silver"
    profile = points_profile(frame, day, quality, silver=silver, silver_table=table if silver else None)
    profile = _readable(profile.toPandas())
    run = runner.run(suite, profile, run_name)
    for check in suite.checks:
        if check == "completeness":
            sample = [
                "series_key",
                "cadence_s",
                "learned",
                "observed",
                "expected",
                "missing",
                "missing_share",
                "gaps",
                "longest_step_s",
                "first_gap_from_ts",
            ]
        else:
            column = POINT_RULES[check]
            sample = ["series_key", "kind", column, f"{column}_ts", f"{column}_value"]
        outcome = profile_outcome(
            run, suite, profile, dataset, check, label, severities[check], sample, quality.sample_rows
        )
        if check == "completeness":
            worst = profile.nlargest(quality.sample_rows, "missing_share") if len(profile) else profile
            outcome.details.update(
                series=len(profile),
                missing_points=int(profile["missing"].sum()) if len(profile) else 0,
                gaps=int(profile["gaps"].sum()) if len(profile) else 0,
                # The missing share of the least complete series, failing or not.
                missing_share_by_series={
                    key: round(float(share), 4)
                    for key, share in zip(worst["series_key"], worst["missing_share"], strict=True)
                    if share > 0
                },
            )
        outcomes.append(outcome)
    return outcomes


def _rollup_day(table: DataFrame, day: dt.date) -> DataFrame:
    return table.where(F.col(BUCKET_DATE) == F.lit(day))


def rollup_checks(
    tables: dict[str, DataFrame], level: str, day: dt.date, settings: Settings, run_name: str
) -> list[CheckOutcome]:
    """A day of a rollup level: valid buckets; equal to its finer level (1h, 1d) and to silver (1d).

    tables: the level's table (``rollup_<level>``), and ``finer`` (1m for 1h, 1h for 1d) and
    ``silver`` where they apply.
    """
    quality = settings.quality
    asset = f"rollup_{level}"
    severities = quality.severities[asset]
    label = day.isoformat()
    # Only buckets of the day: a point outside its partition's day is the points checks' finding.
    expected = {}
    if "finer" in tables:
        expected["finer"] = _rollup_day(rollup_rollups(_rollup_day(tables["finer"], day), level), day)
    if "silver" in tables:
        silver_day = tables["silver"].where(F.col("event_date") == F.lit(day))
        expected["silver"] = _rollup_day(rollup_points(silver_day, level), day)
    profile = rollup_profile(_rollup_day(tables[asset], day), expected, quality.avg_tolerance)
    profile = _readable(profile.toPandas())
    suite = suites.rollup_suite(level, list(expected))
    run = runner_for(docs_dir(quality, settings.run_dir)).run(suite, profile, run_name)
    outcomes = []
    for check in suite.checks:
        if check == "valid":
            sample = [
                "series_key",
                "buckets",
                "invalid_buckets",
                "zero_counts",
                "zero_counts_bucket",
                "disordered",
                "disordered_bucket",
            ]
        else:
            prefix = check.removeprefix("matches_")
            compared = ("mismatched", "mismatched_bucket", "expected_count", "actual_count")
            sample = ["series_key", "buckets", *[f"{prefix}_{column}" for column in compared]]
        outcomes.append(
            profile_outcome(run, suite, profile, asset, check, label, severities[check], sample, quality.sample_rows)
        )
    return outcomes
