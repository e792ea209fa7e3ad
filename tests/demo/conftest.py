"""Fixtures of the demo tests: an isolated stream run on the session stack."""

from tests.streaming.conftest import stream_env

__all__ = ["stream_env"]
