"""The demo's GraphQL documents are valid against the installed Dagster webserver's schema."""

import pytest

from rtdp_dagster.demo import dagster_api

DOCUMENTS = [
    "_AUTOMATIONS",
    "_START_SCHEDULE",
    "_START_SENSOR",
    "_JOBS",
    "_LAUNCH_RUN",
    "_LAUNCH_BACKFILL",
    "_BACKFILL",
    "_CHECKS",
]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_document_validates_against_the_schema(name: str) -> None:
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    assert validate(create_schema().graphql_schema, parse(getattr(dagster_api, name))) == []
