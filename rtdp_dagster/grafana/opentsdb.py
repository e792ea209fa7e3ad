"""A typed OpenTSDB query for grafana-foundation-sdk, which has no builder for this data source.

Fields and JSON names are those of Grafana's built-in OpenTSDB data source (its ``OpenTsdbQuery``),
so panels built here open unchanged in Grafana's query editor.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_TYPE = "opentsdb"

FilterType = typing.Literal[
    "literal_or", "iliteral_or", "not_literal_or", "not_iliteral_or", "wildcard", "iwildcard", "regexp"
]
FillPolicy = typing.Literal["none", "nan", "null", "zero"]


@dataclass(frozen=True)
class TagFilter:
    """An OpenTSDB 2.2+ filter; ``group_by`` splits the result into one series per tag value."""

    tagk: str
    filter: str
    type: FilterType = "literal_or"
    group_by: bool = False

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "tagk": self.tagk, "filter": self.filter, "groupBy": self.group_by}


class OpenTsdbQuery(cogvariants.Dataquery):
    ref_id: str
    datasource: dashboard.DataSourceRef | None
    hide: bool | None
    metric: str | None
    aggregator: str | None
    alias: str | None
    downsample_interval: str | None
    downsample_aggregator: str | None
    downsample_fill_policy: FillPolicy | None
    disable_downsampling: bool | None
    filters: list[TagFilter] | None
    tags: dict[str, str] | None
    should_compute_rate: bool | None
    is_counter: bool | None
    counter_max: str | None
    counter_reset_value: str | None
    explicit_tags: bool | None

    def __init__(self) -> None:
        self.ref_id = ""
        self.datasource = self.hide = self.metric = self.aggregator = self.alias = None
        self.downsample_interval = self.downsample_aggregator = self.downsample_fill_policy = None
        self.disable_downsampling = self.filters = self.tags = None
        self.should_compute_rate = self.is_counter = self.counter_max = self.counter_reset_value = None
        self.explicit_tags = None

    def to_json(self) -> dict[str, object]:
        fields: dict[str, object | None] = {
            "refId": self.ref_id,
            "datasource": self.datasource,
            "hide": self.hide,
            "metric": self.metric,
            "aggregator": self.aggregator,
            "alias": self.alias,
            "downsampleInterval": self.downsample_interval,
            "downsampleAggregator": self.downsample_aggregator,
            "downsampleFillPolicy": self.downsample_fill_policy,
            "disableDownsampling": self.disable_downsampling,
            "filters": self.filters,
            "tags": self.tags,
            "shouldComputeRate": self.should_compute_rate,
            "isCounter": self.is_counter,
            "counterMax": self.counter_max,
            "counterResetValue": self.counter_reset_value,
            "explicitTags": self.explicit_tags,
        }
        return {key: value for key, value in fields.items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> OpenTsdbQuery:
        query = cls()
        query.ref_id = data.get("refId", "")
        if "datasource" in data:
            query.datasource = dashboard.DataSourceRef.from_json(data["datasource"])
        query.hide, query.metric, query.aggregator = data.get("hide"), data.get("metric"), data.get("aggregator")
        query.alias = data.get("alias")
        query.downsample_interval = data.get("downsampleInterval")
        query.downsample_aggregator = data.get("downsampleAggregator")
        query.downsample_fill_policy = data.get("downsampleFillPolicy")
        query.disable_downsampling = data.get("disableDownsampling")
        if "filters" in data:
            query.filters = [
                TagFilter(f["tagk"], f["filter"], f["type"], f.get("groupBy", False)) for f in data["filters"]
            ]
        query.tags = data.get("tags")
        query.should_compute_rate, query.is_counter = data.get("shouldComputeRate"), data.get("isCounter")
        query.counter_max, query.counter_reset_value = data.get("counterMax"), data.get("counterResetValue")
        query.explicit_tags = data.get("explicitTags")
        return query


class OpenTsdbQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder in the SDK's style: ``OpenTsdbQueryBuilder("A").metric("sys.cpu.util").downsample("avg")``."""

    def __init__(self, ref_id: str) -> None:
        self._internal = OpenTsdbQuery()
        self._internal.ref_id = ref_id

    def build(self) -> OpenTsdbQuery:
        return self._internal

    def datasource(self, ref: dashboard.DataSourceRef) -> typing.Self:
        self._internal.datasource = ref
        return self

    def metric(self, metric: str) -> typing.Self:
        self._internal.metric = metric
        return self

    def aggregator(self, aggregator: str) -> typing.Self:
        self._internal.aggregator = aggregator
        return self

    def alias(self, alias: str) -> typing.Self:
        self._internal.alias = alias
        return self

    def downsample(self, aggregator: str, interval: str | None = None, fill: FillPolicy | None = None) -> typing.Self:
        """Without an interval, Grafana uses the panel's automatic interval (time range / max data points)."""
        self._internal.downsample_aggregator = aggregator
        self._internal.downsample_interval = interval
        self._internal.downsample_fill_policy = fill
        return self

    def tags(self, tags: dict[str, str]) -> typing.Self:
        """OpenTSDB tags: ``*`` and ``a|b`` group by the key; template variables expand in 'pipe' format."""
        self._internal.tags = dict(tags)
        return self

    def filter(self, tag_filter: TagFilter) -> typing.Self:
        self._internal.filters = [*(self._internal.filters or []), tag_filter]
        return self

    def rate(self, counter: bool, counter_max: int | None = None, reset_value: int | None = None) -> typing.Self:
        self._internal.should_compute_rate = True
        self._internal.is_counter = counter
        self._internal.counter_max = None if counter_max is None else str(counter_max)
        self._internal.counter_reset_value = None if reset_value is None else str(reset_value)
        return self
