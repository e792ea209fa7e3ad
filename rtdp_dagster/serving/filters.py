"""OpenTSDB tag filters: validation, the backend label matchers, and the exact match in Python.

Every filter requires its tag to be present on a series, as in OpenTSDB. Literal values and
wildcards must use OpenTSDB's tag characters (the ones the writers accept); a regexp must compile,
stay within the syntax both Python and VictoriaMetrics (RE2) read alike, and, as in OpenTSDB,
matches anywhere in the value. The tags ``rollup``, ``agg`` and ``part`` belong to the router.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from rtdp_dagster.serving import metricsql
from rtdp_dagster.serving.errors import bad_request

FILTER_TYPES = {
    "literal_or": "Matches one of the values separated by a pipe, case-sensitive.",
    "iliteral_or": "Matches one of the values separated by a pipe, case-insensitive.",
    "not_literal_or": "Matches none of the values separated by a pipe, case-sensitive.",
    "not_iliteral_or": "Matches none of the values separated by a pipe, case-insensitive.",
    "wildcard": "Matches the value with * standing for any characters, case-sensitive.",
    "iwildcard": "Matches the value with * standing for any characters, case-insensitive.",
    "regexp": "Matches a regular expression anywhere in the value (RE2 syntax).",
}
FILTER_EXAMPLES = {
    "literal_or": "host=literal_or(web01|web02)",
    "iliteral_or": "host=iliteral_or(WEB01|web02)",
    "not_literal_or": "host=not_literal_or(web01|web02)",
    "not_iliteral_or": "host=not_iliteral_or(WEB01)",
    "wildcard": "host=wildcard(web*)",
    "iwildcard": "host=iwildcard(WEB*)",
    "regexp": "host=regexp(web[0-9]+)",
}
# Tags the history TSDB uses for its rollups; never shown, never filtered on.
HIDDEN_TAGS = frozenset({"rollup", "agg", "part"})
VALID_NAME = re.compile(r"^[A-Za-z0-9\-_./]{1,255}$")
_VALID_WILDCARD = re.compile(r"^[A-Za-z0-9\-_./*]{1,255}$")
_MAX_REGEX = 512
_MAX_LITERALS = 1000
# Constructs Python reads and RE2 (VictoriaMetrics) does not, or reads differently.
_NON_RE2 = re.compile(r"\(\?[=!<>#P]|\\[1-9]|\\Z|[*+?}]\+|\(\?[a-z]*x")


@dataclass(frozen=True)
class TagFilter:
    type: str
    tagk: str
    filter: str
    group_by: bool

    def matchers(self) -> list[str]:
        """MetricsQL label matchers selecting exactly the series this filter accepts."""
        name = self.tagk
        present = metricsql.matcher(name, "!=", "")
        if self.type in ("literal_or", "iliteral_or", "not_literal_or", "not_iliteral_or"):
            values = self.filter.split("|")
            case = "(?i)" if self.type.startswith(("iliteral", "not_iliteral")) else ""
            if self.type == "literal_or" and len(values) == 1:
                return [metricsql.matcher(name, "=", values[0])]
            pattern = case + "(?:" + "|".join(metricsql.regex_literal(value) for value in values) + ")"
            op = "!~" if self.type.startswith("not_") else "=~"
            return [present, metricsql.matcher(name, op, pattern)]
        if self.type in ("wildcard", "iwildcard"):
            if self.filter.strip("*") == "":
                return [present]
            case = "(?i)" if self.type == "iwildcard" else ""
            return [present, metricsql.matcher(name, "=~", case + _wildcard_regex(self.filter))]
        return [present, metricsql.matcher(name, "=~", f".*(?:{self.filter}).*")]

    def matches(self, value: str | None) -> bool:
        """Whether a series with this tag value passes (None: the series lacks the tag)."""
        if value is None:
            return False
        if self.type.endswith("literal_or"):
            found = (value.lower() if self.type in ("iliteral_or", "not_iliteral_or") else value) in self._literals
            return found != self.type.startswith("not_")
        return self._pattern.search(value) is not None

    @cached_property
    def _literals(self) -> frozenset[str]:
        values = self.filter.split("|")
        return (
            frozenset(v.lower() for v in values)
            if self.type in ("iliteral_or", "not_iliteral_or")
            else frozenset(values)
        )

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        if self.type in ("wildcard", "iwildcard"):
            flags = re.IGNORECASE if self.type == "iwildcard" else 0
            return re.compile("^" + _wildcard_regex(self.filter) + "$", flags)
        return re.compile(self.filter)

    def describe(self) -> dict:
        return {"type": self.type, "tagk": self.tagk, "filter": self.filter, "groupBy": self.group_by}


def make_filter(type_: object, tagk: object, expression: object, group_by: object = False) -> TagFilter:
    """A validated filter; raises a 400 naming the problem."""
    if not isinstance(type_, str) or type_ not in FILTER_TYPES:
        raise bad_request(f"unknown filter type {type_!r}; supported: {', '.join(FILTER_TYPES)}")
    tag = validate_tagk(tagk)
    if not isinstance(expression, str) or not expression:
        raise bad_request(f"filter on tag {tag!r}: the filter must be a non-empty string")
    _reject_control(expression, f"filter on tag {tag!r}")
    if not isinstance(group_by, bool):
        raise bad_request(f"filter on tag {tag!r}: groupBy must be true or false")
    if type_.endswith("literal_or"):
        values = expression.split("|")
        if len(values) > _MAX_LITERALS:
            raise bad_request(f"filter on tag {tag!r}: more than {_MAX_LITERALS} values")
        for value in values:
            validate_tagv(value, tag)
    elif type_.endswith("wildcard"):
        if not _VALID_WILDCARD.match(expression):
            raise bad_request(
                f"filter on tag {tag!r}: wildcard {expression!r} may only use the characters A-Z a-z 0-9 - _ . / and *"
            )
    else:
        _validate_regex(expression, tag)
    return TagFilter(type_, tag, expression, group_by)


def filter_from_tag_value(tagk: object, value: object, group_by: bool = True) -> TagFilter:
    """The filter an OpenTSDB tag value stands for: ``type(expr)``, ``*`` patterns, ``a|b`` or a literal."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"tag {tagk!r}: the value must be a non-empty string")
    match = re.fullmatch(r"([a-z_]+)\((.*)\)", value, re.DOTALL)
    if match and match.group(1) in FILTER_TYPES:
        return make_filter(match.group(1), tagk, match.group(2), group_by)
    if match:
        raise bad_request(f"tag {tagk!r}: unknown filter type {match.group(1)!r}; supported: {', '.join(FILTER_TYPES)}")
    if "*" in value:
        return make_filter("wildcard", tagk, value, group_by)
    return make_filter("literal_or", tagk, value, group_by)


def validate_tagk(tagk: object) -> str:
    if not isinstance(tagk, str) or not VALID_NAME.match(tagk):
        raise bad_request(
            f"invalid tag key {tagk!r}: tag keys use the characters A-Z a-z 0-9 - _ . / (1 to 255 of them)"
        )
    if tagk in HIDDEN_TAGS or tagk.startswith("__"):
        raise bad_request(f"tag key {tagk!r} is reserved by the router")
    return tagk


def validate_tagv(value: str, tagk: str) -> str:
    if not VALID_NAME.match(value):
        raise bad_request(
            f"invalid value {value!r} for tag {tagk!r}: tag values use the characters A-Z a-z 0-9 - _ . / "
            "(for patterns use wildcard(...) or regexp(...))"
        )
    return value


def _validate_regex(expression: str, tagk: str) -> None:
    if len(expression) > _MAX_REGEX:
        raise bad_request(f"filter on tag {tagk!r}: regexp longer than {_MAX_REGEX} characters")
    if _NON_RE2.search(expression):
        raise bad_request(
            f"filter on tag {tagk!r}: regexp {expression!r} uses lookaround, backreferences, possessive or "
            "verbose syntax, which the TSDB's RE2 engine does not support"
        )
    try:
        re.compile(expression)
    except re.error as exc:
        raise bad_request(f"filter on tag {tagk!r}: invalid regexp {expression!r}: {exc}") from None


def _reject_control(text: str, what: str) -> None:
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise bad_request(f"{what}: control characters are not allowed")


def _wildcard_regex(pattern: str) -> str:
    return ".*".join(metricsql.regex_literal(part) for part in pattern.split("*"))
