"""What a source hands to the collector: one row as read, before validation (here, beside the validation
that reads it, so the envelope needs nothing from collection).

Sources do no validation of their own beyond parsing their format: a row that cannot become a
valid point is still returned (with what could be read and the raw row), so the collector can
dead-letter it with a reason instead of it vanishing inside a source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal["i", "u", "d"]


# Not frozen: a frozen dataclass costs ~0.7 us more to build, a fifth of the collector's whole
# budget a row at 200k rows/s; rows are handed from source to collector and never modified.
@dataclass(slots=True)
class RawRecord:
    # Metric name as the source names it (validated later against OpenTSDB's character set).
    metric: str | None
    # Series identity beyond the metric: host, site, app, region, instance, ...
    tags: dict[str, str]
    # The value as read: a number, or whatever the source held (a string, None) for the
    # collector to reject with a reason.
    value: Any
    # Event time, epoch milliseconds; None when the row has no usable timestamp.
    ts_ms: int | None
    # i = insert, u = correction of an earlier value, d = retraction.
    op: Op = "i"
    # The source's own version of this point when it has one (e.g. an updated_at in ms, a
    # sequence number); a later correction must carry a larger version. None: the collector
    # derives one from the collection time.
    version: int | None = None
    # The original row, JSON-serialisable, kept for the dead-letter topic.
    raw: Any = field(default=None, compare=False)
