"""Rows as read from a file of record, remembering where they came from for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

from rtdp_dagster.master_data.errors import Problem

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Row(Generic[M]):
    """A validated row: number is 1-based among the data rows, line is its line in the file."""

    file: Path
    number: int
    line: int
    item: M
    # YAML only: the line of each key, so a problem points at the field itself.
    field_lines: dict[str, int] = field(default_factory=dict)

    def problem(self, field_name: str, message: str) -> Problem:
        return Problem(self.file, message, field_name, self.number, self.field_lines.get(field_name, self.line))
