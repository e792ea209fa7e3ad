"""Backend query text keeps user input quoted; the history segment cache expires and evicts."""

from __future__ import annotations

import numpy as np

from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.fetch import Source, expression
from rtdp_dagster.serving.filters import make_filter
from rtdp_dagster.serving.segment_cache import Contribution, SegmentCache
from rtdp_dagster.serving.vm import VmClient


def test_label_names_are_escaped_and_values_quoted():
    assert metricsql.label_name("host.name-1/a") == "host\\.name\\-1\\/a"
    assert metricsql.label_name("9k") == "\\9k"
    assert metricsql.matcher("host", "=", 'a"}[1y]') == 'host="a\\"}[1y]"'
    assert metricsql.regex_literal("web.01") == "web\\.01"


def test_a_hostile_regexp_stays_inside_its_string_literal():
    hostile = make_filter("regexp", "host", 'x"} or vector(1) #')
    source = Source(VmClient("http://tsdb", "history"), "sys.cpu", tuple(hostile.matchers()))
    text = expression(source, "1h", ("count", "sum"), 3_600_000)
    assert 'host=~".*(?:x\\"} or vector(1) #).*"' in text
    assert text.startswith('sum without (part) (sum_over_time({__name__="sys.cpu",host!="",')
    assert 'rollup="1h",agg=~"count|sum"}[3600000ms] offset -3599999ms))' in text


def test_segment_cache_expires_and_evicts_the_least_recent():
    now = [0.0]
    cache = SegmentCache(ttl_s=10, max_entries=2, clock=lambda: now[0])
    entry = [Contribution({"host": "a"}, "sum", np.array([0]), np.array([1.0]))]
    cache.put("a", entry)
    cache.put("b", entry)
    assert cache.get("a") is entry  # "a" is now the most recent
    cache.put("c", entry)
    assert cache.get("b") is None and cache.get("a") is entry and cache.get("c") is entry
    now[0] = 10.0
    assert cache.get("a") is None
