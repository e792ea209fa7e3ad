"""Fixtures of the batch tests: a folder for their Delta tables, and the NAB data when it is there."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings


@pytest.fixture
def table_path(stack: Settings):
    """A fresh Delta table path per call, under the test stack's Delta root."""
    root = Path(stack.delta.root) / f"batch-{uuid.uuid4().hex[:8]}"
    return lambda name: str(root / name)


@pytest.fixture(scope="session")
def nab_dir(settings: Settings) -> Path:
    directory = Path(settings.nab_data_dir)
    if not directory.is_dir() or not any(directory.glob("*.csv")):
        pytest.skip(f"NAB CloudWatch CSV files not found in {directory} (setting nab_data_dir)")
    return directory
