"""The suites of the days of a dataset: Spark profiles judged by Great Expectations, as check outcomes per day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rtdp_dagster.batch.intervals import BUCKET_DATE
from rtdp_dagster.batch.rollups import rollup_points, rollup_rollups
from rtdp_dagster.batch.steps import StepTimes
from rtdp_dagster.config import QualityConfig, Settings
from rtdp_dagster.quality import suites
from rtdp_dagster.quality.gx_runner import SuiteRun, runner_for
from rtdp_dagster.quality.outcomes import CheckOutcome, docs_dir, iso_ms, profile_outcome, schema_outcome
from rtdp_dagster.quality.profiles import DAY, POINT_RULES, as_days, in_own_day, points_profile, rollup_profile
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


# How pandas holds a Spark column without nulls (with nulls: float64, or object for booleans).
_WITHOUT_NULLS = {
    T.ByteType: "int8",
    T.ShortType: "int16",
    T.IntegerType: "int32",
    T.LongType: "int64",
    T.BooleanType: "bool",
}


def _profiles_by_day(profile: DataFrame, days: list[dt.date]) -> dict[dt.date, pd.DataFrame]:
    """The profile of the days collected once, as each day's rows without the day column: each frame
    typed as the day's profile collected alone is (a count stays an integer in a day without nulls,
    though another day's nulls made the column float), then made readable; what a suite judges and a
    sample shows."""
    types = {field.name: type(field.dataType) for field in profile.schema.fields}
    collected = profile.toPandas()
    rows = collected.drop(columns=DAY)
    by_day = {}
    for day in days:
        frame = rows.loc[collected[DAY] == day.isoformat()].reset_index(drop=True)
        for column in frame.columns:
            dtype = _WITHOUT_NULLS.get(types[column])
            if dtype and frame[column].dtype != dtype and not frame[column].isna().any():
                frame[column] = frame[column].astype(dtype)
        by_day[day] = _readable(frame)
    return by_day


def suite_run_name(asset: str, days: list[dt.date], run: str) -> str:
    """A suite run's name (its Data Docs page): the asset, its day (first...last for several), the run."""
    span = days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()}...{days[-1].isoformat()}"
    return f"{asset}-{span}-{run}"


def points_checks(
    table: DataFrame,
    dataset: str,
    days: dt.date | Sequence[dt.date],
    settings: Settings,
    run: str,
    times: StepTimes | None = None,
) -> list[CheckOutcome]:
    """Schema, key, day and range checks of each day (silver: also uniqueness, counters, completeness).

    table: the whole Delta table (silver's completeness learns cadences from the days before). The
    schema is judged once (it is the table's, the same for every day), the rows of every day in one
    Spark job; each day is a suite run (and Data Docs page) of its own. run: the run's name (the
    Dagster run), the last part of each suite run's (``suite_run_name``). times, when given, gets the
    seconds of ``gx_start`` (GX's import and context, once per process), ``schema_suite``, ``profile`` (the
    Spark job and its collection) and ``suites`` (GX and its Data Docs)."""
    days = as_days(days)
    times = times or StepTimes()
    quality = settings.quality
    severities = quality.severities[dataset]
    frame = table.where(F.col("event_date").isin(days))
    schema = suites.schema_suite(dataset, SCHEMAS[dataset])
    with times.step("gx_start"):
        runner = runner_for(docs_dir(quality, settings.run_dir))
    with times.step("schema_suite"):
        # Columns and their types are the frame's schema: no pass over the rows.
        schema_run = runner.run(schema, frame.limit(0), suite_run_name(dataset, days, run))
    suite = suites.points_suite(dataset, quality)
    outcomes = []
    if not schema_run.success:
        for day in days:
            label = day.isoformat()
            outcomes.append(schema_outcome(schema_run, schema, dataset, label, severities["schema"]))
            outcomes += _not_evaluated(dataset, suite.checks, label, severities, "the schema does not match")
        return outcomes
    silver = dataset == "silver"
    with times.step("profile"):
        profile = points_profile(frame, days, quality, silver=silver, silver_table=table if silver else None)
        by_day = _profiles_by_day(profile, days)
    with times.step("suites"):
        day_runs = runner.run_all([(suite, rows, suite_run_name(dataset, [day], run)) for day, rows in by_day.items()])
    for (day, day_profile), day_run in zip(by_day.items(), day_runs, strict=True):
        label = day.isoformat()
        outcomes.append(schema_outcome(schema_run, schema, dataset, label, severities["schema"]))
        outcomes += _points_outcomes(day_run, suite, day_profile, dataset, label, quality)
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
    tables: dict[str, DataFrame],
    level: str,
    days: dt.date | Sequence[dt.date],
    settings: Settings,
    run: str,
    times: StepTimes | None = None,
) -> list[CheckOutcome]:
    """Each day of a rollup level: valid buckets; equal to its finer level (1h, 1d) and to silver (1d).

    tables: the level's table (``rollup_<level>``), and ``finer`` (1m for 1h, 1h for 1d) and
    ``silver`` where they apply. Every day in one Spark job, a suite run (and Data Docs page) per day;
    run and times as for ``points_checks``.
    """
    days = as_days(days)
    times = times or StepTimes()
    quality = settings.quality
    asset = f"rollup_{level}"
    severities = quality.severities[asset]
    # Only buckets of the days, each from rows inside their partition's day: a point outside it is the
    # points checks' finding (and a finer bucket outside it no day's), as when each day is judged alone.
    expected = {}
    if "finer" in tables:
        finer = _rollup_days(tables["finer"], days).where(in_own_day(F.col("bucket_start"), F.col(BUCKET_DATE)))
        expected["finer"] = _rollup_days(rollup_rollups(finer, level), days)
    if "silver" in tables:
        silver = tables["silver"].where(F.col("event_date").isin(days))
        points = silver.where(in_own_day(F.col("ums_ts_"), F.col("event_date")))
        expected["silver"] = _rollup_days(rollup_points(points, level), days)
    suite = suites.rollup_suite(level, list(expected))
    with times.step("profile"):
        by_day = _profiles_by_day(
            rollup_profile(_rollup_days(tables[asset], days), expected, quality.avg_tolerance), days
        )
    with times.step("suites"):
        runner = runner_for(docs_dir(quality, settings.run_dir))
        day_runs = runner.run_all([(suite, rows, suite_run_name(asset, [day], run)) for day, rows in by_day.items()])
    outcomes = []
    for (day, day_profile), day_run in zip(by_day.items(), day_runs, strict=True):
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
            label = day.isoformat()
            outcomes.append(
                profile_outcome(
                    day_run, suite, day_profile, asset, check, label, severities[check], sample, quality.sample_rows
                )
            )
    return outcomes
