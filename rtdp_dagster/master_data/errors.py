"""Problems found in master data, each naming the file, the row and the field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# The CLI prints one line: the first problems, then how many more there are.
_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One defect. row is the 1-based data row of a list file; line is where it starts in the file."""

    file: Path | str
    message: str
    field: str | None = None
    row: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        parts = [str(self.file)]
        if self.row is not None:
            parts.append(f"row {self.row}" + (f" (line {self.line})" if self.line is not None else ""))
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class MasterDataError(Exception):
    """Master data that cannot be loaded; ``problems`` lists every defect found."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> MasterDataError:
        shown = "; ".join(str(problem) for problem in problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        return cls(f"invalid master data, {count}: {shown}{more}", problems)
