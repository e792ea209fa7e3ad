"""Whether a VictoriaMetrics keeps one sample per series and timestamp, from the flags it reports.

Without ``-dedup.minScrapeInterval`` VictoriaMetrics stores every sample written, also one written
again with the same series, timestamp and value, and returns them all. With it, reads (queries and
``/api/v1/export``) return one sample per series and interval and background merges drop the rest;
``/api/v1/export?reduce_mem_usage=1`` still returns what is stored. Of samples with the same timestamp
written apart (flushed in between) it keeps the biggest value, not the last one written
(VictoriaMetrics 1.79, checked by hand): a corrected value must replace its series (delete, then
write), never rely on being written later.
"""

from __future__ import annotations

import re

import requests

FLAG = "dedup.minScrapeInterval"
# A Go duration, as the flag takes it: "1ms", "1m30s", "0".
_TERM = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def dedup_interval_ms(base_url: str, timeout_s: float = 10.0) -> float | None:
    """The TSDB's deduplication interval in ms (0: it keeps every sample), or None when it reports no
    flags (not a VictoriaMetrics)."""
    response = requests.get(f"{base_url.rstrip('/')}/flags", timeout=timeout_s)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    # One `-name="value"` line per flag set on the command line; an unset flag is at its default, 0.
    for line in response.text.splitlines():
        name, _, value = line.strip().lstrip("-").partition("=")
        if name == FLAG:
            return parse_duration_ms(value.strip('"'))
    return 0.0


def parse_duration_ms(text: str) -> float:
    """A duration flag's value ("1ms", "1m30s", "0") in ms."""
    text = text.strip()
    if text == "0":
        return 0.0
    terms = _TERM.findall(text)
    if not terms or "".join(number + unit for number, unit in terms) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_MS[unit] for number, unit in terms)
