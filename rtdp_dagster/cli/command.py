"""What every command module shares: the subcommand registry, the handler signature, the expected failure."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from rtdp_dagster.config import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[Settings, argparse.Namespace], int]


class CommandError(Exception):
    """An expected failure of a command: printed as one line, exit code 1."""
