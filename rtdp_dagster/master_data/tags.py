"""How master data lands in a point's tags, the same in the stream (Python) and in silver (Spark).

For a host the master data knows, its site and app win over whatever the source tagged; for an
unknown host the source's own site/app tags stay, and a missing one becomes ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

UNKNOWN = "unknown"
ENRICHED_TAGS = ("site", "app")


def enriched_tag_dict(tags: Mapping[str, str], master: Mapping[str, str], host_known: bool) -> dict[str, str]:
    result = dict(tags)
    for name in ENRICHED_TAGS:
        result[name] = master[name] if host_known else result.get(name) or UNKNOWN
    return result


def enriched_tags(tags: Column, master: Mapping[str, Column], host_known: Column) -> Column:
    kept = F.map_filter(tags, lambda key, _: ~key.isin(*ENRICHED_TAGS))
    pairs = []
    for name in ENRICHED_TAGS:
        pairs += [F.lit(name), F.when(host_known, master[name]).otherwise(F.coalesce(tags[name], F.lit(UNKNOWN)))]
    return F.map_concat(kept, F.create_map(*pairs))
