"""Fixtures of the quality tests: the NAB data of the batch tests, when it is there."""

from tests.batch.conftest import nab_dir

__all__ = ["nab_dir"]
