"""The table layout without Spark: rows per host, and a missing table read as None in both session kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from pyspark.errors import AnalysisException

from rtdp_dagster.master_data import load_master_data
from rtdp_dagster.master_data.table import COLUMNS, host_rows, read_table

MASTER_DIR = Path(__file__).resolve().parents[2] / "master_data"


class _Condition(AnalysisException):
    def __init__(self, condition: str) -> None:
        super().__init__(message=f"[{condition}] test")
        self._condition = condition

    def getCondition(self) -> str:
        return self._condition


class _Frame:
    def __init__(self, error: AnalysisException | None) -> None:
        self._error = error

    @property
    def schema(self) -> object:
        if self._error:
            raise self._error
        return "schema"


class _Session:
    """load() fails like a classic session (eager) or returns a frame that fails on schema like Spark Connect."""

    def __init__(self, error: AnalysisException, eager: bool) -> None:
        self.error, self.eager = error, eager

    @property
    def read(self) -> _Session:
        return self

    def format(self, _: str) -> _Session:
        return self

    def load(self, _: str) -> _Frame:
        if self.eager:
            raise self.error
        return _Frame(self.error)


@pytest.mark.parametrize("eager", [True, False], ids=["classic", "connect"])
def test_missing_table_reads_as_none_and_other_errors_raise(eager: bool) -> None:
    missing = cast(Any, _Session(_Condition("PATH_NOT_FOUND"), eager))
    assert read_table(missing, "/nowhere") is None
    being_created = cast(Any, _Session(_Condition("DELTA_TABLE_NOT_FOUND"), eager))  # no first commit yet
    assert read_table(being_created, "/empty-folder") is None
    broken = cast(Any, _Session(_Condition("DELTA_MISSING_DELTA_TABLE"), eager))
    with pytest.raises(AnalysisException):
        read_table(broken, "/not-delta")


def test_host_rows_follow_the_column_order() -> None:
    version = load_master_data(MASTER_DIR).get(2)
    rows = host_rows(version, valid_to_ms=None)
    assert len(rows) == len(version.servers) == 217
    by_host = {row[COLUMNS.index("host")]: dict(zip(COLUMNS, row, strict=True)) for row in rows}
    assert by_host["site02-host0010"] == {
        "version": 2,
        "valid_from_ms": version.valid_from_ms,
        "valid_to_ms": None,
        "host": "site02-host0010",
        "site": "site02",
        "site_name": "Dublin DC1",
        "region": "eu-west",
        "app": "app01",
        "app_name": "Web storefront",
        "owner": "team-web",
        "role": "web",
        "environment": "prod",
        "apps": ["app01", "app03"],
    }
