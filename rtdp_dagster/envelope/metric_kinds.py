"""Metric kinds: what values a metric may take, chosen by metric-name pattern.

One rule set (configuration key ``quality.metric_kinds``) serves the stream's validation before
quarantine and the batch quality checks, so a value one of them refuses the other refuses too.
A kind bounds the value (``percent`` 0-100, ``non_negative`` >= 0) and may mark the series as a
counter (non-decreasing except for detected resets, judged per series by the batch checks: one
point alone cannot tell a reset from a glitch). Patterns are globs (``*`` any run of characters,
``?`` one), tried in order; the first match wins, else ``default_kind``. Each glob compiles to one
anchored regex used both by Python (``re``) and by Spark (``rlike``, Java regex), so both sides
match the same names.
"""

from __future__ import annotations

import math
import re

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

PERCENT = "percent"
NON_NEGATIVE = "non_negative"
COUNTER = "counter"
FREE = "free"


class MetricKind(BaseModel):
    """Bounds of a kind's values (inclusive; None = unbounded) and whether it is a counter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None
    counter: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> MetricKind:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class KindPattern(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._/*?-]+$")
    kind: str


def glob_regex(pattern: str) -> str:
    """An anchored regex for a glob that Python's ``re`` and Java's regex read the same way."""
    parts = [".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern]
    return "^" + "".join(parts) + "$"


def _default_kinds() -> dict[str, MetricKind]:
    return {
        PERCENT: MetricKind(min=0.0, max=100.0),
        NON_NEGATIVE: MetricKind(min=0.0),
        COUNTER: MetricKind(min=0.0, counter=True),
        FREE: MetricKind(),
    }


def _default_patterns() -> list[KindPattern]:
    # Order matters: CloudWatch counts are per-period sums (they go up and down), not counters.
    return [
        KindPattern(pattern="sys.cpu.util", kind=PERCENT),
        KindPattern(pattern="cloudwatch.*.cpu_utilization", kind=PERCENT),
        KindPattern(pattern="cloudwatch.*", kind=NON_NEGATIVE),
        KindPattern(pattern="sys.mem.*", kind=NON_NEGATIVE),
        KindPattern(pattern="*.bytes*", kind=NON_NEGATIVE),
        KindPattern(pattern="*_bytes*", kind=NON_NEGATIVE),
        KindPattern(pattern="app.requests.count", kind=COUNTER),
        KindPattern(pattern="*.count", kind=COUNTER),
    ]


class MetricKinds(BaseModel):
    """Kinds and the ordered metric-name patterns that assign them (configuration ``quality.metric_kinds``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: dict[str, MetricKind] = Field(default_factory=_default_kinds)
    patterns: list[KindPattern] = Field(default_factory=_default_patterns)
    default_kind: str = FREE
    _compiled: list[tuple[re.Pattern[str], str]] = PrivateAttr(default_factory=list)
    _cache: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _known_kinds(self) -> MetricKinds:
        unknown = sorted({p.kind for p in self.patterns} - set(self.kinds) | ({self.default_kind} - set(self.kinds)))
        if unknown:
            raise ValueError(f"patterns or default_kind name undefined kinds {unknown}; defined: {sorted(self.kinds)}")
        self._compiled = [(re.compile(regex), kind) for regex, kind in self.regexes()]
        return self

    def regexes(self) -> list[tuple[str, str]]:
        """(anchored regex, kind) in matching order."""
        return [(glob_regex(p.pattern), p.kind) for p in self.patterns]

    def kind_of(self, metric: str) -> str:
        kind = self._cache.get(metric)
        if kind is None:
            kind = next((kind for regex, kind in self._compiled if regex.match(metric)), self.default_kind)
            if len(self._cache) >= 100_000:
                self._cache.clear()
            self._cache[metric] = kind
        return kind

    def out_of_range(self, metric: str, value: float) -> str | None:
        """Why the value is outside its metric kind's range, or None when it is inside."""
        kind_name = self.kind_of(metric)
        kind = self.kinds[kind_name]
        below = kind.min is not None and value < kind.min
        if math.isnan(value) or below or (kind.max is not None and value > kind.max):
            low = "-inf" if kind.min is None else f"{kind.min:g}"
            high = "inf" if kind.max is None else f"{kind.max:g}"
            return f"value {value!r} of {metric} (kind {kind_name}) is outside [{low}, {high}]"
        return None
