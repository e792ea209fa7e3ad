"""How fresh each asset must be: freshness policies (Dagster's current API; the daemon judges them and
the UI shows a late asset as failing) and one freshness check on silver's daily partitions.

- silver: yesterday's partition by ``silver_deadline_cron`` (01:30 UTC). A cron policy looks at
  the asset's last materialization of any partition, so a late-data re-run of an older day would
  make silver look fresh while yesterday is missing: a time-partition freshness check (ERROR, run
  by ``freshness_checks_sensor``) judges exactly the latest partition. Dagster marks these check
  builders as superseded by policies; they are used for this one case policies do not cover.
- rollup_1m/1h/1d by ``rollups_deadline_cron`` (02:00), rollup_1w/1mo/1y, which follow their
  days, by ``coarse_rollups_deadline_cron`` (03:00): cron policies;
- collection_log within ``collection_log_max_age_s`` (copied every 5 minutes): a time-window policy.
"""

import datetime as dt

import dagster as dg

from rtdp_dagster.config import FreshnessConfig

DAILY = ["silver", "rollup_1m", "rollup_1h", "rollup_1d"]
COARSE = ["rollup_1w", "rollup_1mo", "rollup_1y"]


def _since_midnight(cron: str) -> dt.timedelta:
    """From 00:00 to the deadline of a daily cron ("M H * * *"): the day's runs all count as fresh."""
    minute, hour = (int(part) for part in cron.split()[:2])
    return dt.timedelta(hours=hour, minutes=minute)


def day_expected_by(cron: str, now: dt.datetime) -> dt.date:
    """The daily partition silver's freshness check expects at ``now``: the day before the latest
    deadline tick that has passed (before 01:30 UTC that is the day before yesterday)."""
    latest_tick = dt.datetime.combine(now.date(), dt.time(), dt.UTC) + _since_midnight(cron)
    if latest_tick > now:
        latest_tick -= dt.timedelta(days=1)
    return latest_tick.date() - dt.timedelta(days=1)


def policies(config: FreshnessConfig) -> dict[str, dg.FreshnessPolicy]:
    def daily(cron: str) -> dg.FreshnessPolicy:
        return dg.FreshnessPolicy.cron(deadline_cron=cron, lower_bound_delta=_since_midnight(cron), timezone="UTC")

    found: dict[str, dg.FreshnessPolicy] = {"silver": daily(config.silver_deadline_cron)}
    found.update({name: daily(config.rollups_deadline_cron) for name in DAILY[1:]})
    found.update({name: daily(config.coarse_rollups_deadline_cron) for name in COARSE})
    found["collection_log"] = dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(seconds=config.collection_log_max_age_s)
    )
    return found


def with_freshness_policies(defs: dg.Definitions, config: FreshnessConfig) -> dg.Definitions:
    """The definitions with each asset's freshness policy attached (assets without one unchanged)."""
    chosen = policies(config)

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = chosen.get(spec.key.to_user_string())
        return dg.apply_freshness_policy(spec, policy) if policy is not None else spec

    # Once on the merged location (Dagster marks this API preview): the policies span the domains, and a
    # domain below quality cannot import them.
    return defs.map_resolved_asset_specs(func=attach)


def freshness_checks(config: FreshnessConfig) -> list[dg.AssetChecksDefinition]:
    """The freshness check of silver's latest daily partition."""
    return list(
        dg.build_time_partition_freshness_checks(
            assets=["silver"], deadline_cron=config.silver_deadline_cron, severity=dg.AssetCheckSeverity.ERROR
        )
    )


def freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    return dg.build_sensor_for_freshness_checks(freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING)
