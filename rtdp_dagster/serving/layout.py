"""Which series of passed-through answers a sub-query shows, in what order, under what head.

A refreshed panel gets answers naming the same series in the same order; only their points move on.
What depends on the series alone (their labels parsed, the tag filters, the order of the results,
each result's head and tail encoded) is worked out once per distinct labels and kept, so a repeated
answer is rewritten without a Python step per series beyond picking its pairs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from rtdp_dagster.serving.model import SubQuery
from rtdp_dagster.serving.partials import SeriesKey, key_of, series_tags

# Distinct (sub-query, labels) kept: a few for each panel of the dashboards in use.
_KEPT = 512


@dataclass(frozen=True)
class Shown:
    """One result object: its JSON before and after its dps, and where its pairs are: (answer, series)
    in time order."""

    head: bytes  # {"metric":...,"tags":{...},"aggregateTags":[],"dps":
    tail: bytes  # } or ,"query":{...}}
    parts: tuple[tuple[int, int], ...]


@functools.lru_cache(maxsize=_KEPT)
def layout(
    query: SubQuery, show_query: bool, levels: tuple[str | None, ...], labels: tuple[bytes, ...]
) -> tuple[Shown, ...] | None:
    """The result objects of answers (one per segment, in time order; a segment's level or None) whose
    series have these labels (an answer's labels objects joined by commas), in the general path's
    order; None when they need the general path (two series with the same tags, or groups of several)."""
    assert query.downsample is not None
    function = query.downsample.function
    found: dict[SeriesKey, tuple[dict[str, str], list[tuple[int, int]]]] = {}
    for answer, (level, text) in enumerate(zip(levels, labels, strict=True)):
        try:
            every = orjson.loads(b"[" + text + b"]")
        except orjson.JSONDecodeError:
            return None
        seen = set()
        for series, series_labels in enumerate(every):
            if level and series_labels.get("agg", function) != function:
                continue  # a history row of another aggregate
            tags = series_tags(series_labels)
            if not query.accepts(tags):
                continue
            key = key_of(tags)
            if key in seen:
                return None
            seen.add(key)
            # Segments come in time order and share no bucket: a series' pairs are concatenated.
            found.setdefault(key, (tags, []))[1].append((answer, series))
    if query.aggregator == "none":
        ordered = [found[key] for key in sorted(found)]
    else:
        group_by = query.group_by
        groups = {tuple(tags.get(name, "") for name in group_by): (tags, parts) for tags, parts in found.values()}
        if len(groups) < len(found):
            return None
        ordered = [groups[key] for key in sorted(groups)]
    tail = b',"query":' + orjson.dumps(query.describe()) + b"}" if show_query else b"}"
    return tuple(
        Shown(
            orjson.dumps({"metric": query.metric, "tags": tags, "aggregateTags": []})[:-1] + b',"dps":',
            tail,
            tuple(parts),
        )
        for tags, parts in ordered
    )
