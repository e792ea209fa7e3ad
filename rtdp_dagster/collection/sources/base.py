"""The source interface shared by every collector, wave and benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from rtdp_dagster.envelope.records import RawRecord


@runtime_checkable
class Source(Protocol):
    """A readable source of points.

    ``read_window(start_ms, end_ms, now_ms)`` yields every record whose event time t satisfies
    start_ms < t <= end_ms and that the source has made ready by now_ms (the wall clock of the
    caller; tests and replays pass a simulated one). Reading the same window again later may
    return more rows (late data) or changed rows (corrections): that is why waves re-read.
    It must not skip rows because an earlier read returned them: de-duplication happens
    downstream by point_key.
    """

    name: str

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]: ...

    def close(self) -> None: ...
