"""Building MetricsQL label matchers and selectors with every user-given part quoted or escaped.

Label names are escaped character by character (MetricsQL accepts ``\\.`` in identifiers), values
are string literals (JSON string syntax, which MetricsQL reads), and literal text inside a regular
expression is regex-escaped first. Nothing from a query is pasted into a backend query otherwise.
"""

from __future__ import annotations

import json
import re

_PLAIN_LABEL_CHAR = re.compile(r"[A-Za-z0-9_]")
_REGEX_SPECIAL = set("\\.^$|?*+()[]{}-/")


def label_name(name: str) -> str:
    escaped = "".join(char if _PLAIN_LABEL_CHAR.match(char) else "\\" + char for char in name)
    return "\\" + escaped if name[:1].isdigit() else escaped


def string_literal(value: str) -> str:
    return json.dumps(value)


def regex_literal(text: str) -> str:
    """Text matched literally inside a (RE2 or Python) regular expression."""
    return "".join("\\" + char if char in _REGEX_SPECIAL else char for char in text)


def matcher(name: str, op: str, value: str) -> str:
    if op not in ("=", "!=", "=~", "!~"):
        raise ValueError(f"unknown matcher operator {op!r}")
    return f"{label_name(name)}{op}{string_literal(value)}"


def selector(metric: str, matchers: list[str]) -> str:
    return "{" + ",".join([matcher("__name__", "=", metric), *matchers]) + "}"
