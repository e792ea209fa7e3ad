"""How fresh each asset must be: freshness policies (shown on the asset in the UI) and freshness checks.

- silver of yesterday by ``silver_deadline_cron`` (01:30 UTC), rollup_1m/1h/1d by
  ``rollups_deadline_cron`` (02:00): time-partition freshness checks (ERROR for silver, WARN for the
  rollups), and cron freshness policies;
- rollup_1w/1mo/1y, which follow their days, updated by ``coarse_rollups_deadline_cron`` (a policy);
- collection_log within ``collection_log_max_age_s`` (a last-update check and a time-window policy).

The checks run from ``freshness_checks_sensor``; the policies are judged by the Dagster daemon.
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
    """The definitions with each asset's freshness policy attached."""
    chosen = policies(config)

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = chosen.get(spec.key.to_user_string())
        return dg.apply_freshness_policy(spec, policy) if policy is not None else spec

    return defs.map_asset_specs(func=attach)


def freshness_checks(config: FreshnessConfig) -> list[dg.AssetChecksDefinition]:
    return [
        *dg.build_time_partition_freshness_checks(
            assets=["silver"], deadline_cron=config.silver_deadline_cron, severity=dg.AssetCheckSeverity.ERROR
        ),
        *dg.build_time_partition_freshness_checks(assets=DAILY[1:], deadline_cron=config.rollups_deadline_cron),
        *dg.build_last_update_freshness_checks(
            assets=["collection_log"], lower_bound_delta=dt.timedelta(seconds=config.collection_log_max_age_s)
        ),
    ]


def freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    return dg.build_sensor_for_freshness_checks(freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING)
