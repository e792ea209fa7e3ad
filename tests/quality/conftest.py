"""Fixtures of the quality tests: the NAB data of the batch tests, an isolated stream run."""

from tests.batch.conftest import nab_dir
from tests.streaming.conftest import stream_env

__all__ = ["nab_dir", "stream_env"]
