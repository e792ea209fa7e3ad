"""Which series of passed-through answers a sub-query shows, in what order, with what JSON around them.

A refreshed panel gets answers naming the same series in the same order; only their points move on.
What depends on the series alone (their labels parsed, the tag filters, the order of the results,
each result's JSON but its points) is worked out once per distinct labels and kept, so a repeated
answer is rewritten without a Python step per series beyond picking its pairs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson

from rtdp_dagster.serving.model import SubQuery
from rtdp_dagster.serving.pairs import disguise, dps_brackets
from rtdp_dagster.serving.partials import SeriesKey, key_of, series_tags

# Distinct (sub-query, labels) kept: a few for each panel of the dashboards in use.
_KEPT = 512


@dataclass(frozen=True)
class Layout:
    """The result objects: their JSON between their pairs (disguised for pairs.rewrite), and where the
    pairs of each are, (answer, series) in time order."""

    # The JSON before the first result's pairs, an empty slot for them, the JSON up to the next one's, ...
    template: tuple[bytes, ...]
    parts: tuple[tuple[tuple[int, int], ...], ...]

    def fill(self, answers: list[list[bytes]]) -> bytes:
        """The text to rewrite from the answers' pairs (matrix_texts): every result's JSON, joined by commas."""
        if len(answers) == 1:
            only = answers[0]
            pieces = [only[parts[0][1]] for parts in self.parts]
        else:
            # A series read from two segments: its pairs joined as they are within one.
            pieces = [b'"],['.join(answers[answer][series] for answer, series in parts) for parts in self.parts]
        texts = list(self.template)
        texts[1::2] = pieces
        return b"".join(texts)


@functools.lru_cache(maxsize=_KEPT)
def layout(
    query: SubQuery, show_query: bool, arrays: bool, levels: tuple[str | None, ...], labels: tuple[bytes, ...]
) -> Layout | None:
    """The results of answers (one per segment, in time order; a segment's level or None) whose series
    have these labels (an answer's labels objects joined by commas), in the general path's order;
    None when they need the general path (two series with the same tags, or groups of several)."""
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
    opening, closing = dps_brackets(arrays)
    tail = closing + (b',"query":' + orjson.dumps(query.describe()) + b"}" if show_query else b"}")
    heads = [
        orjson.dumps({"metric": query.metric, "tags": tags, "aggregateTags": []})[:-1] + b',"dps":' + opening
        for tags, _ in ordered
    ]
    around = [b""] if not heads else [heads[0], *(tail + b"," + head for head in heads[1:]), tail]
    template = [b""] * (2 * len(around) - 1)
    template[0::2] = [disguise(text) for text in around]
    return Layout(tuple(template), tuple(tuple(parts) for _, parts in ordered))
