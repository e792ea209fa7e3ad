"""The data-quality suites as Dagster asset checks, on each asset's daily partition.

- ``silver_quality`` (schema, keys, day, uniqueness, range, counters, completeness) is blocking:
  an ERROR failure stops the run before ``rollup_1m`` (so nothing of the day reaches the rollups or
  the history TSDB). Override by fixing the data and re-running the day, or, for a known and
  accepted defect, by materializing the rollups of that day without silver in the run (a check
  gates only the run it is part of), or by setting the check's severity to WARN in configuration.
- ``rollup_<level>_quality`` (count > 0, min <= avg <= max; equal to the finer level and to silver)
  is blocking for the next level in the same way.
- ``silver_reconciliation`` compares counts along the whole path; an unexplained difference fails.
- ``bronze_quality`` checks a day of bronze (the stream writes it outside Dagster; the daily schedule
  checks yesterday).

A check judges the days of the partitioned run it is part of; run on its own (``bronze_quality_job``,
``reconciliation_job``, or checks launched alone from the UI) it judges the run config's ``day``,
default yesterday.

Every result is also published as ``rtdp.dq.*`` metrics and carries failing counts, a sample of the
failing rows and a link to the Great Expectations Data Docs page of its validation.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession

from rtdp_dagster.batch import partitions
from rtdp_dagster.batch.steps import StepTimes
from rtdp_dagster.config import Settings
from rtdp_dagster.config.quality import CHECKS
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.quality.outcomes import CheckOutcome
from rtdp_dagster.quality.resources import GreatExpectationsResource
from rtdp_dagster.resources import DeltaTablesResource, TsdbResource
from rtdp_dagster.resources.platform import PlatformConfigResource
from rtdp_dagster.streaming.assets import bronze, quarantine, realtime_tsdb

_DESCRIPTIONS = {
    "schema": "Exactly the table's columns, each of its type (GX, Spark data source).",
    "keys_not_null": "No null metric, tags, ums_ts_, point_key, ums_id_ or ums_op_, and a value unless retracted.",
    "in_partition_day": "Every ums_ts_ lies inside the partition's UTC day.",
    "point_key_unique": "One row per point_key.",
    "series_time_unique": "One row per (series, ums_ts_): a point_key that is not the hash of its identity "
    "cannot keep two values of one point.",
    "value_range": "Values inside the range of their metric kind (quality.metric_kinds, as the stream validates).",
    "counter_monotonic": "Counters never decrease except at detected resets (a drop to a small fraction).",
    "completeness": "Per series: missing share against the expected cadence within the limit, no long gap.",
    "valid": "Every bucket has count > 0 and min <= avg <= max.",
    "matches_finer": "Equal to the next finer level rolled up (the sum of its counts, sums, ...).",
    "matches_silver": "Equal to silver of the day aggregated directly.",
}


class QualityDayConfig(dg.Config):
    """The day a run without partitions checks (a partitioned run checks its own days)."""

    day: str = Field(default="", description="UTC day to check, YYYY-MM-DD; empty: yesterday.")


def _days(context: dg.AssetCheckExecutionContext, config: QualityDayConfig) -> list[dt.date]:
    if context.has_partition_key or context.has_partition_key_range:
        return partitions.days_of(context.partition_time_window)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return [dt.date.fromisoformat(config.day) if config.day else yesterday]


def _specs(asset: str, checks: Iterable[str], *, blocking: bool, **extra) -> list[dg.AssetCheckSpec]:
    # Not partitioned checks (partitioned ones are a preview API): a check judges the days of the run it
    # is part of (context.partition_time_window) and names them in its metadata.
    return [
        dg.AssetCheckSpec(check, asset=asset, description=_DESCRIPTIONS.get(check), blocking=blocking, **extra)
        for check in checks
    ]


def _markdown(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: object) -> str:
    # Series keys hold "|": escaped, or the table would split them into columns.
    return "" if value is None else str(value).replace("|", "\\|")


def check_result(outcomes: list[CheckOutcome], sample_rows: int, extra: dict | None = None) -> dg.AssetCheckResult:
    """One Dagster result for a check over the run's days; extra: more metadata."""
    first, failing = outcomes[0], [o for o in outcomes if not o.passed]
    sample = [{"day": o.day, **row} for o in failing for row in o.sample][:sample_rows]
    metadata: dict = {
        "days": ", ".join(o.day for o in outcomes),
        "failing_rows": sum(o.failing_rows for o in outcomes),
        "failing_series": sum(o.failing_series for o in outcomes),
        "failing_sample": dg.MetadataValue.md(_markdown(sample)),
    }
    if first.suite:
        metadata["suite"] = first.suite
        metadata["suite_version"] = first.suite_version
    pages = [o.docs_page for o in outcomes if o.docs_page]
    if pages:
        metadata["data_docs"] = dg.MetadataValue.path(pages[-1])
        metadata["data_docs_url"] = dg.MetadataValue.url(f"file://{pages[-1]}")
    details = {o.day: o.details for o in outcomes if o.details}
    if details:
        metadata["details"] = dg.MetadataValue.json(details)
    metadata.update(extra or {})
    return dg.AssetCheckResult(
        asset_key=first.asset,
        check_name=first.check,
        passed=not failing,
        severity=dg.AssetCheckSeverity(first.severity),
        metadata=metadata,
    )


def _results(outcomes: list[CheckOutcome], sample_rows: int, times: StepTimes) -> list[dg.AssetCheckResult]:
    """One result per check; each carries the seconds of the evaluation they share (``profile_s``: the
    Spark job and its collection, ``suites_s``: Great Expectations and its Data Docs, ``publish_s``; the
    points suites' also ``gx_start_s`` and ``schema_suite_s``; ``gx_import_wait_s``: waiting for the import
    of GX the run started in the background)."""
    by_check: dict[str, list[CheckOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_check[outcome.check].append(outcome)
    seconds = {f"{name}_s": dg.MetadataValue.float(value) for name, value in times.seconds.items()}
    return [check_result(items, sample_rows, seconds) for items in by_check.values()]


def _publish(outcomes: list[CheckOutcome], tsdb: TsdbResource, times: StepTimes) -> None:
    from rtdp_dagster.quality.metrics import check_points, publish
    from rtdp_dagster.wall_clock import now_ms

    with times.step("publish"):
        publish(tsdb.put_http_url, check_points(outcomes, now_ms()), tsdb.timeout_s)


def _run(context: dg.AssetCheckExecutionContext) -> str:
    """The Dagster run, as the suite runs' names (Data Docs pages) end."""
    return context.run.run_id[:8]


@dataclass(frozen=True)
class SuiteInput:
    """What a suite check's evaluation is given: the session, the tables, the days of the run, the run's
    name (the suite runs' names end with it) and the step times it adds to."""

    session: SparkSession
    delta: DeltaTablesResource
    settings: Settings
    days: list[dt.date]
    run: str
    times: StepTimes


SuiteEvaluation = Callable[[SuiteInput], list[CheckOutcome]]


def build_suite_check(
    asset: str, specs: list[dg.AssetCheckSpec], description: str, evaluate: SuiteEvaluation
) -> dg.AssetChecksDefinition:
    """A multi-check of one asset's suites (``<asset>_quality``) on each day of the run, published as
    ``rtdp.dq.*`` and as check results with the seconds of each step."""

    @dg.multi_asset_check(specs=specs, name=f"{asset}_quality", description=description)
    def suite_check(
        context: dg.AssetCheckExecutionContext,
        config: QualityDayConfig,
        spark: LazyPySparkResource,
        delta: DeltaTablesResource,
        platform: PlatformConfigResource,
        realtime_tsdb: TsdbResource,
        great_expectations: GreatExpectationsResource,
    ) -> Iterable[dg.AssetCheckResult]:
        times = StepTimes()
        with times.step("gx_import_wait"):
            great_expectations.ready()
        settings = platform.settings()
        outcomes = evaluate(
            SuiteInput(spark.spark_session, delta, settings, _days(context, config), _run(context), times)
        )
        _publish(outcomes, realtime_tsdb, times)
        context.log.info(f"{asset} checks: seconds per step {times.seconds}")
        yield from _results(outcomes, settings.quality.sample_rows, times)

    return suite_check


def build_points_quality(
    asset: str, checks: Sequence[str], *, blocking: bool, missing_hint: str, description: str
) -> dg.AssetChecksDefinition:
    """The points suites of bronze or silver."""

    def evaluate(given: SuiteInput) -> list[CheckOutcome]:
        from rtdp_dagster.quality.evaluate import points_checks

        table = read_table(given.session, given.delta.table_path(asset))
        if table is None:
            raise dg.Failure(f"{asset} has no table yet: {missing_hint}")
        # Every day of the run in one pass (a backfill's range is one Spark job, not one per day).
        return points_checks(table, asset, given.days, given.settings, given.run, given.times)

    return build_suite_check(asset, _specs(asset, checks, blocking=blocking), description, evaluate)


silver_quality = build_points_quality(
    "silver",
    [c for c in CHECKS["silver"] if c != "reconciliation"],
    blocking=True,
    missing_hint="materialize it before checking it",
    description="The silver suites on each day of the run; ERROR failures keep the day out of the rollups.",
)


def build_rollup_quality(level: str) -> dg.AssetChecksDefinition:
    """The checks of one daily rollup level (1m, 1h or 1d)."""
    asset = f"rollup_{level}"
    finer = {"1h": "rollup_1m", "1d": "rollup_1h"}.get(level)
    deps = [name for name in (finer, "silver" if level == "1d" else None) if name]

    def evaluate(given: SuiteInput) -> list[CheckOutcome]:
        from rtdp_dagster.quality.evaluate import rollup_checks

        def load(name: str) -> DataFrame:
            return given.session.read.format("delta").load(given.delta.table_path(name))

        tables = {asset: load(asset)}
        if finer:
            tables["finer"] = load(finer)
        if level == "1d":
            tables["silver"] = load("silver")
        return rollup_checks(tables, level, given.days, given.settings, given.run, given.times)

    specs = _specs(asset, CHECKS[asset], blocking=True, additional_deps=deps)
    description = f"The {level} rollup suite on each day of the run; ERROR failures stop the next level."
    return build_suite_check(asset, specs, description, evaluate)


rollup_quality_checks = [build_rollup_quality(level) for level in ("1m", "1h", "1d")]


@dg.asset_check(
    asset="silver",
    name="reconciliation",
    additional_deps=[bronze, quarantine, realtime_tsdb],
    description="Counts along the path (collection log → Kafka → bronze → silver → realtime TSDB) for each day, "
    "every difference explained (dead-lettered, quarantined, duplicates, corrections, retractions, late); "
    "an unexplained difference fails.",
)
def silver_reconciliation(
    context: dg.AssetCheckExecutionContext,
    config: QualityDayConfig,
    spark: LazyPySparkResource,
    delta: DeltaTablesResource,
    platform: PlatformConfigResource,
    realtime_tsdb: TsdbResource,
) -> dg.AssetCheckResult:
    from rtdp_dagster.batch.sensors import silver_read_version
    from rtdp_dagster.quality.metrics import check_points, publish, reconciliation_points
    from rtdp_dagster.quality.reconciliation import reconcile_days
    from rtdp_dagster.wall_clock import now_ms

    settings = platform.settings()
    severity = settings.quality.severities["silver"]["reconciliation"]
    times = StepTimes()
    days = _days(context, config)
    reconciliations = reconcile_days(
        spark.spark_session,
        settings,
        days,
        table_path=delta.table_path,
        silver_reads={day: silver_read_version(context.instance, day.isoformat()) for day in days},
        times=times,
    )
    context.log.info(f"silver reconciliation: seconds per stage (all days) {times.seconds}")
    outcomes = [
        CheckOutcome(
            "silver", "reconciliation", r.day, r.passed, severity, sum(stage.unexplained for stage in r.stages)
        )
        for r in reconciliations
    ]
    at = now_ms()
    publish(
        realtime_tsdb.put_http_url,
        check_points(outcomes, at) + [point for r in reconciliations for point in reconciliation_points(r, at)],
        realtime_tsdb.timeout_s,
    )
    metadata: dict = {
        "days": ", ".join(r.day for r in reconciliations),
        "failing_rows": sum(o.failing_rows for o in outcomes),
        "stages": dg.MetadataValue.md("\n\n".join(f"**{r.day}**\n\n{r.markdown()}" for r in reconciliations)),
        # Seconds of each stage over all days, as the suites' checks report theirs.
        **{f"{name}_s": dg.MetadataValue.float(value) for name, value in times.seconds.items()},
    }
    for stage in reconciliations[-1].stages if reconciliations else []:
        metadata[f"{stage.name}_count"] = -1 if stage.count is None else stage.count
        metadata[f"{stage.name}_unexplained"] = stage.unexplained
    return dg.AssetCheckResult(
        passed=all(r.passed for r in reconciliations), severity=dg.AssetCheckSeverity(severity), metadata=metadata
    )


reconciliation_job = dg.define_asset_job(
    "reconciliation_job",
    selection=dg.AssetSelection.checks(silver_reconciliation),
    description="Reconciles one day again (run config `day`, default yesterday), e.g. after a repair.",
)


bronze_quality = build_points_quality(
    "bronze",
    CHECKS["bronze"],
    blocking=False,
    missing_hint="is the stream running?",
    description="The bronze suites on one day (run config `day`, default yesterday): schema, keys, day, range.",
)


bronze_quality_job = dg.define_asset_job(
    "bronze_quality_job",
    selection=dg.AssetSelection.checks(bronze_quality),
    description="The bronze suites on one day (yesterday unless run config says otherwise).",
)
quality_checks = [silver_quality, silver_reconciliation, *rollup_quality_checks, bronze_quality]
