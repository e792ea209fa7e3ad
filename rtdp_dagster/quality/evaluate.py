"""The suites of the days of a dataset: Spark profiles judged by Great Expectations, as check outcomes per day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.batch.intervals import BUCKET_DATE, DAY_MS
from rtdp_dagster.batch.rollups import rollup_points, rollup_rollups
from rtdp_dagster.config import QualityConfig, Settings
from rtdp_dagster.quality import suites
from rtdp_dagster.quality.gx_runner import SuiteRun, runner_for
from rtdp_dagster.quality.outcomes import CheckOutcome, docs_dir, iso_ms, profile_outcome, schema_outcome
from rtdp_dagster.quality.profiles import DAY, POINT_RULES, as_days, points_profile, rollup_profile
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


def _by_day(profile: pd.DataFrame, days: list[dt.date]) -> dict[dt.date, pd.DataFrame]:
    """The profile rows of each day, without the day column (what the suites judge)."""
    rows = profile.drop(columns=DAY)
    return {day: rows.loc[profile[DAY] == day.isoformat()].reset_index(drop=True) for day in days}


def _day_run_name(run_name: str, day: dt.date, days: list[dt.date]) -> str:
    return run_name if len(days) == 1 else f"{run_name}-{day.isoformat()}"


def points_checks(
    table: DataFrame, dataset: str, days: dt.date | Sequence[dt.date], settings: Settings, run_name: str
) -> list[CheckOutcome]:
    """Schema, key, day and range checks of each day (silver: also uniqueness, counters, completeness).

    table: the whole Delta table (silver's completeness learns cadences from the days before). The
    schema is judged once (it is the table's, the same for every day), the rows of every day in one
    Spark job; each day is a suite run (and Data Docs page) of its own, named run_name (plus the day
    when there are several).
    """
    days = as_days(days)
    quality = settings.quality
    severities = quality.severities[dataset]
    runner = runner_for(docs_dir(quality, settings.run_dir))
    frame = table.where(F.col("event_date").isin(days))
    schema = suites.schema_suite(dataset, SCHEMAS[dataset])
    # Columns and their types are the frame's schema: no pass over the rows.
    schema_run = runner.run(schema, frame.limit(0), run_name)
    outcomes = []
    suite = suites.points_suite(dataset, quality)
    if not schema_run.success:
        for day in days:
            label = day.isoformat()
            outcomes.append(schema_outcome(schema_run, schema, dataset, label, severities["schema"]))
            outcomes += _not_evaluated(dataset, suite.checks, label, severities, "the schema does not match")
        return outcomes
    silver = dataset == "silver"
    profile = points_profile(frame, days, quality, silver=silver, silver_table=table if silver else None)
    profiles = _by_day(_readable(profile.toPandas()), days)
    for day in days:
        label = day.isoformat()
        outcomes.append(schema_outcome(schema_run, schema, dataset, label, severities["schema"]))
        outcomes += _points_outcomes(
            runner.run(suite, profiles[day], _day_run_name(run_name, day, days)),
            suite,
            profiles[day],
            dataset,
            label,
            quality,
        )
    return outcomes


def _points_outcomes(
    run: SuiteRun, suite: suites.Suite, profile: pd.DataFrame, dataset: str, label: str, quality: QualityConfig
) -> list[CheckOutcome]:
    severities = quality.severities[dataset]
    outcomes = []
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


def _rollup_days(table: DataFrame, days: list[dt.date]) -> DataFrame:
    return table.where(F.col(BUCKET_DATE).isin(days))


def rollup_checks(
    tables: dict[str, DataFrame], level: str, days: dt.date | Sequence[dt.date], settings: Settings, run_name: str
) -> list[CheckOutcome]:
    """Each day of a rollup level: valid buckets; equal to its finer level (1h, 1d) and to silver (1d).

    tables: the level's table (``rollup_<level>``), and ``finer`` (1m for 1h, 1h for 1d) and
    ``silver`` where they apply. Every day in one Spark job, a suite run (and Data Docs page) per day.
    """
    days = as_days(days)
    quality = settings.quality
    asset = f"rollup_{level}"
    severities = quality.severities[asset]
    # Only buckets of the days: a point outside its partition's day is the points checks' finding.
    expected = {}
    if "finer" in tables:
        expected["finer"] = _rollup_days(rollup_rollups(_rollup_days(tables["finer"], days), level), days)
    if "silver" in tables:
        # The points of each day's partition inside that day (the points checks judge the others).
        silver = tables["silver"].where(F.col("event_date").isin(days))
        start = F.unix_date(F.col("event_date")).cast("long") * DAY_MS
        inside = silver.where(F.col("ums_ts_").between(start, start + DAY_MS - 1))
        expected["silver"] = _rollup_days(rollup_points(inside, level), days)
    profile = rollup_profile(_rollup_days(tables[asset], days), expected, quality.avg_tolerance)
    profiles = _by_day(_readable(profile.toPandas()), days)
    suite = suites.rollup_suite(level, list(expected))
    runner = runner_for(docs_dir(quality, settings.run_dir))
    outcomes = []
    for day in days:
        run = runner.run(suite, profiles[day], _day_run_name(run_name, day, days))
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
                profile_outcome(
                    run,
                    suite,
                    profiles[day],
                    asset,
                    check,
                    day.isoformat(),
                    severities[check],
                    sample,
                    quality.sample_rows,
                )
            )
    return outcomes
