"""Parser of the Prometheus text exposition format (version 0.0.4, and what OpenMetrics adds).

One result per sample line: a ``Sample``, or a ``BadLine`` that keeps whatever could be read,
so one broken line never loses the rest of a scrape. Handled: ``# HELP`` / ``# TYPE`` and other
comments, labels with ``\\\\``, ``\\"`` and ``\\n`` escapes, trailing commas, quoted (UTF-8)
metric and label names inside the braces, ``NaN`` / ``+Inf`` / ``-Inf``, optional integer
timestamps in ms, and OpenMetrics exemplars (`` # {...} v``, ignored). Histograms and summaries
need nothing special: their ``_bucket`` / ``_sum`` / ``_count`` lines are ordinary samples, and the
family's ``# TYPE`` is attached to each of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
# Suffixes by which a sample belongs to a family declared under its base name.
_FAMILY_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created", "_gcount", "_gsum", "_info")


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None
    # The family's declared type (counter, gauge, histogram, summary, ...), "untyped" if none.
    family_type: str
    line: str


@dataclass(frozen=True)
class BadLine:
    line: str
    reason: str
    # What could be read before the problem.
    name: str | None = None
    labels: dict[str, str] | None = None
    value_text: str | None = None


class _LineError(ValueError):
    def __init__(self, reason: str, name: str | None = None, labels: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.name, self.labels = name, labels


def _quoted(line: str, start: int) -> tuple[str, int]:
    """The unescaped text of a double-quoted string starting at line[start]; index after it."""
    chars: list[str] = []
    index = start + 1
    while index < len(line):
        char = line[index]
        if char == '"':
            return "".join(chars), index + 1
        if char == "\\" and index + 1 < len(line):
            following = line[index + 1]
            # Unknown escapes are kept as written rather than failing the whole line.
            chars.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        chars.append(char)
        index += 1
    raise _LineError("unterminated quoted string")


def _skip_blanks(line: str, index: int) -> int:
    while index < len(line) and line[index] in " \t":
        index += 1
    return index


def _labels(line: str, index: int, name: str | None) -> tuple[str | None, dict[str, str], int]:
    """Parse ``{...}`` starting at line[index] == "{"; returns (name, labels, index after "}")."""
    labels: dict[str, str] = {}
    try:
        return _label_set(line, index, name, labels)
    except _LineError as error:
        # Keep what was read before the problem, for the record of the bad line.
        raise _LineError(str(error), error.name or name, error.labels or labels) from None


def _label_set(
    line: str, index: int, name: str | None, labels: dict[str, str]
) -> tuple[str | None, dict[str, str], int]:
    index += 1
    while True:
        index = _skip_blanks(line, index)
        if index >= len(line):
            raise _LineError("unterminated label set", name, labels)
        if line[index] == "}":
            return name, labels, index + 1
        if line[index] == '"':
            key, index = _quoted(line, index)
            after = _skip_blanks(line, index)
            if after >= len(line) or line[after] != "=":
                # A quoted string without "=" is the metric name (UTF-8 names, Prometheus 3).
                if name is not None:
                    raise _LineError("two metric names", name, labels)
                name, index = key, after
                index = _expect_separator(line, index, name, labels)
                continue
            index = after
        else:
            match = _LABEL_NAME.match(line, index)
            if not match:
                raise _LineError(f"bad label name at column {index + 1}", name, labels)
            key, index = match.group(), _skip_blanks(line, match.end())
        if index >= len(line) or line[index] != "=":
            raise _LineError(f"expected '=' after label {key!r}", name, labels)
        index = _skip_blanks(line, index + 1)
        if index >= len(line) or line[index] != '"':
            raise _LineError(f"label {key!r} value is not quoted", name, labels)
        labels[key], index = _quoted(line, index)
        index = _expect_separator(line, index, name, labels)


def _expect_separator(line: str, index: int, name: str | None, labels: dict[str, str]) -> int:
    index = _skip_blanks(line, index)
    if index < len(line) and line[index] == ",":
        return index + 1
    if index < len(line) and line[index] == "}":
        return index
    raise _LineError(f"expected ',' or '}}' at column {index + 1}", name, labels)


def _family_type(name: str, types: dict[str, str]) -> str:
    if name in types:
        return types[name]
    for suffix in _FAMILY_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in types:
            return types[name[: -len(suffix)]]
    return "untyped"


def parse_sample(line: str, types: dict[str, str]) -> Sample | BadLine:
    """One sample line; types maps family names to their # TYPE."""
    name: str | None = None
    labels: dict[str, str] = {}
    try:
        index = _skip_blanks(line, 0)
        if line.startswith("{", index):
            name, labels, index = _labels(line, index, None)
        else:
            match = _NAME.match(line, index)
            if not match:
                raise _LineError("no metric name")
            name, index = match.group(), match.end()
            if index < len(line) and line[index] not in " \t{":
                raise _LineError(f"unexpected character {line[index]!r} in metric name", name)
            # Like Prometheus' own parser, blanks are allowed between the name and the braces.
            brace = _skip_blanks(line, index)
            if line.startswith("{", brace):
                name, labels, index = _labels(line, brace, name)
        if name is None:
            raise _LineError("no metric name", None, labels)
    except _LineError as error:
        return BadLine(line, str(error), error.name, error.labels)
    rest = line[index:]
    # OpenMetrics exemplar: "value [timestamp] # {labels} value [timestamp]".
    fields = rest.split("#", 1)[0].split()
    if not fields or len(fields) > 2:
        return BadLine(line, "expected a value and an optional timestamp", name, labels, rest.strip() or None)
    try:
        value = float(fields[0])
    except ValueError:
        return BadLine(line, f"value {fields[0]!r} is not a number", name, labels, fields[0])
    timestamp_ms: int | None = None
    if len(fields) == 2:
        try:
            timestamp_ms = int(fields[1])
        except ValueError:
            return BadLine(line, f"timestamp {fields[1]!r} is not an integer", name, labels, fields[0])
    return Sample(name, labels, value, timestamp_ms, _family_type(name, types), line)


def parse_exposition(text: str) -> Iterator[Sample | BadLine]:
    """Every sample (or unreadable sample line) of a scrape, in order."""
    types: dict[str, str] = {}
    # Lines end with "\n" only: splitlines() would also split on characters inside label values.
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped[1:].split(None, 3)
            if len(parts) >= 3 and parts[0] == "TYPE":
                types[parts[1]] = parts[2].lower()
            # HELP text, UNIT, EOF and free comments carry no samples.
            continue
        yield parse_sample(line, types)
