"""A parsed, validated /api/query request: what every later step works from."""

from __future__ import annotations

from dataclasses import dataclass

from rtdp_dagster.serving.buckets import Bucketing
from rtdp_dagster.serving.filters import TagFilter

# Cross-series aggregators; each also works as a downsample aggregator except ``none``.
AGGREGATORS = ("avg", "count", "first", "last", "max", "mimmax", "mimmin", "min", "none", "sum", "zimsum")
# Downsampling reduces one series' points per bucket; the mim/zim variants differ only across series.
DOWNSAMPLE_FUNCTIONS = {
    "avg": "avg",
    "count": "count",
    "first": "first",
    "last": "last",
    "max": "max",
    "mimmax": "max",
    "mimmin": "min",
    "min": "min",
    "sum": "sum",
    "zimsum": "sum",
}
FILL_POLICIES = ("none", "nan", "null", "zero")
# OpenTSDB's default counter maximum (Long.MAX_VALUE).
DEFAULT_COUNTER_MAX = float(2**63 - 1)


@dataclass(frozen=True)
class Downsample:
    text: str
    bucketing: Bucketing
    function: str  # avg, count, first, last, max, min, sum
    fill: str  # none, nan, null, zero


@dataclass(frozen=True)
class RateOptions:
    counter: bool = False
    counter_max: float = DEFAULT_COUNTER_MAX
    reset_value: float = 0.0
    drop_resets: bool = False

    def describe(self) -> dict:
        return {
            "counter": self.counter,
            "counterMax": self.counter_max,
            "resetValue": self.reset_value,
            "dropResets": self.drop_resets,
        }


@dataclass(frozen=True)
class SubQuery:
    index: int
    metric: str
    aggregator: str
    downsample: Downsample | None
    rate: bool
    rate_options: RateOptions
    filters: tuple[TagFilter, ...]
    explicit_tags: bool

    @property
    def group_by(self) -> tuple[str, ...]:
        return tuple(sorted({f.tagk for f in self.filters if f.group_by}))

    def accepts(self, tags: dict[str, str]) -> bool:
        """Whether a series with these tags passes the filters (and has no other tag with explicitTags)."""
        if self.explicit_tags and set(tags) != {item.tagk for item in self.filters}:
            return False
        return all(item.matches(tags.get(item.tagk)) for item in self.filters)

    def describe(self) -> dict:
        """The normalized sub-query, as OpenTSDB echoes it with showQuery."""
        return {
            "aggregator": self.aggregator,
            "metric": self.metric,
            "tsuids": None,
            "downsample": self.downsample.text if self.downsample else None,
            "rate": self.rate,
            "rateOptions": self.rate_options.describe() if self.rate else None,
            "filters": [f.describe() for f in self.filters],
            "explicitTags": self.explicit_tags,
            "index": self.index,
        }


@dataclass(frozen=True)
class QueryRequest:
    start_ms: int
    end_ms: int  # inclusive, as in OpenTSDB
    queries: tuple[SubQuery, ...]
    ms_resolution: bool = False
    show_query: bool = False
    arrays: bool = False
