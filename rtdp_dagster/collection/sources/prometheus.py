"""Prometheus scraper: pulls a service's ``/metrics`` and yields one record per sample.

A scrape sees only the target's current values; nothing at the target remembers the past.
So ``read_window(start, end, now)`` scrapes once, at ``now`` (the caller's clock), and yields
the samples only if ``start < now <= end + min(end - start, 30 s)``: wave 1, reading the window
that has just closed, gets them (stamped at ``min(now, end)``); waves 2 and 3 re-read windows that closed
minutes or hours ago, scrape nothing and return nothing new. A window that wave 1 missed stays a
gap (the history would have to come from a TSDB that scraped it, not from the target).

A sample's time is its own exposition timestamp when it has one (it may then lie before the
window: the scrape is the only moment it can be seen, so it is yielded anyway), else the scrape
time. Names are mapped to what OpenTSDB accepts (``[A-Za-z0-9._/-]``):

- metric: ``metric_prefix`` + name, with ``:`` (the recording-rule level separator) → ``.``
  and any other refused character → ``_``; ``job:http_requests:rate5m`` → ``job.http_requests.rate5m``;
- label names: refused characters → ``_`` (only quoted UTF-8 names can have them);
- label values: ``+Inf`` → ``inf``, ``-Inf`` → ``-inf`` (histogram ``le``), refused characters → ``_``;
  empty values are dropped (Prometheus treats an empty label as absent);
- tags are ``instance`` (the target's ``host_port``, so every sample has the tag OpenTSDB
  requires), overridden by the sample's labels, overridden by ``extra_tags``.

The mapping is lossy (two label values can map to one); the original line, name and labels are
kept in ``raw``. A line that cannot be parsed becomes a record with what could be read and the
value as text or None, for the collector to dead-letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from rtdp_dagster.collection.sources.prometheus_text import BadLine, Sample, parse_exposition
from rtdp_dagster.config.sources import PrometheusSourceConfig
from rtdp_dagster.envelope.records import RawRecord

_REFUSED = re.compile(r"[^A-Za-z0-9._/-]")
# Longest delay after a window's end at which a scrape still belongs to it (below any wave offset).
GRACE_MS = 30_000
_INFINITIES = {"+Inf": "inf", "Inf": "inf", "-Inf": "-inf"}
# Ask for the text format; a server that prefers protobuf or OpenMetrics still sends text.
_ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"


class ScrapeError(Exception):
    """The target could not be scraped (connection, timeout, HTTP status)."""


def opentsdb_metric(name: str, prefix: str = "") -> str:
    return prefix + _REFUSED.sub("_", name.replace(":", "."))


def opentsdb_tag_key(key: str) -> str:
    return _REFUSED.sub("_", key)


def opentsdb_tag_value(value: str) -> str:
    return _INFINITIES.get(value) or _REFUSED.sub("_", value)


class PrometheusScrapeSource:
    """Scrapes one target per read; see the module docstring for windows and name mapping."""

    def __init__(self, config: PrometheusSourceConfig) -> None:
        self.name = config.name
        self._config = config
        self._allow = re.compile(config.allow) if config.allow else None
        self._deny = re.compile(config.deny) if config.deny else None
        location = urlsplit(config.url)
        self._base_tags = {"instance": opentsdb_tag_value(location.netloc.replace(":", "_"))}
        self._session = requests.Session()

    def scrape(self) -> str:
        try:
            response = self._session.get(self._config.url, timeout=self._config.timeout_s, headers={"Accept": _ACCEPT})
            response.raise_for_status()
        except requests.RequestException as exc:
            raise ScrapeError(f"{self.name}: scrape of {self._config.url} failed: {exc}") from exc
        return response.content.decode("utf-8", errors="replace")

    def _wanted(self, name: str | None) -> bool:
        if name is None:
            return True  # an unreadable line is always handed on, to be dead-lettered
        if self._allow is not None and not self._allow.fullmatch(name):
            return False
        return self._deny is None or not self._deny.fullmatch(name)

    def _tags(self, labels: dict[str, str] | None) -> dict[str, str]:
        tags = dict(self._base_tags)
        for key, value in (labels or {}).items():
            if value != "":
                tags[opentsdb_tag_key(key)] = opentsdb_tag_value(value)
        tags.update(self._config.extra_tags)
        return tags

    def records(self, text: str, scrape_ms: int) -> Iterator[RawRecord]:
        """The records of one scrape's text, stamped with scrape_ms where a sample has no time."""
        prefix, url = self._config.metric_prefix, self._config.url
        for item in parse_exposition(text):
            if not self._wanted(item.name):
                continue
            metric = opentsdb_metric(item.name, prefix) if item.name is not None else None
            raw: dict[str, Any] = {"url": url, "line": item.line, "name": item.name, "labels": item.labels}
            if isinstance(item, Sample):
                raw["type"] = item.family_type
                ts_ms = item.timestamp_ms if item.timestamp_ms is not None else scrape_ms
                yield RawRecord(metric, self._tags(item.labels), item.value, ts_ms, raw=raw)
            else:
                assert isinstance(item, BadLine)
                raw["error"] = item.reason
                yield RawRecord(metric, self._tags(item.labels), item.value_text, scrape_ms, raw=raw)

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]:
        # Wave 1's worker reads a window just after it closes: a scrape less than one window
        # length (at most GRACE_MS) after its end still belongs to it, stamped at the end so it
        # stays inside. The cap keeps a catch-up wave's long windows from scraping "now".
        if not start_ms < now_ms <= end_ms + min(end_ms - start_ms, GRACE_MS):
            return  # the past cannot be scraped (module docstring)
        yield from self.records(self.scrape(), min(now_ms, end_ms))

    def close(self) -> None:
        self._session.close()
