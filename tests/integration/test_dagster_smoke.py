"""The smoke code location (production definitions plus the smoke assets) loads, and its smoke assets run
against the real stack."""

import dagster as dg

from rtdp_dagster.config import Settings


def test_definitions_load_and_validate() -> None:
    from rtdp_dagster.smoke.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert {key.to_user_string() for key in defs.resolve_all_asset_keys()} >= {
        "smoke_kafka_points",
        "smoke_delta_points",
        "smoke_realtime_tsdb",
    }


def test_smoke_assets_materialize_end_to_end(stack: Settings) -> None:
    from rtdp_dagster.smoke import assets
    from rtdp_dagster.smoke.definitions import defs

    result = dg.materialize(
        [assets.smoke_kafka_points, assets.smoke_delta_points, assets.smoke_realtime_tsdb],
        resources=defs.resources,
    )
    assert result.success
    metadata = {
        event.materialization.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert metadata["smoke_kafka_points"]["records"].value == 1000
    assert metadata["smoke_delta_points"]["rows"].value == 1000
    assert metadata["smoke_realtime_tsdb"]["queryable"].value == 1000
    assert [check.passed for check in result.get_asset_check_evaluations()] == [True]


def test_smoke_cli_prints_summary_and_urls(stack: Settings, capsys) -> None:
    from rtdp_dagster.cli import main

    assert main(["smoke", "--points", "300"]) == 0
    out = capsys.readouterr().out
    assert ": OK" in out
    assert "points in realtime TSDB    300" in out
    assert stack.tsdb.realtime.url in out
