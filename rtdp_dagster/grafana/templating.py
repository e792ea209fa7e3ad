"""Grafana's template variables, as its frontend resolves them for the OpenTSDB data source.

A query variable runs ``metricFindQuery``: the query is interpolated in the 'distributed' format
and answered by /api/suggest or /api/search/lookup. Panel queries are interpolated in the 'pipe'
format. "All" with a custom all value (``*``) is substituted unformatted, as Grafana does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALL = "$__all"
# Grafana's variableRegex: $var, [[var]], [[var:fmt]], ${var}, ${var:fmt}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
# OpenTsDatasource.metricFindQuery, tried in this order.
_FIND_QUERIES = (
    ("metrics", re.compile(r"metrics\((.*)\)")),
    ("tag_names", re.compile(r"tag_names\((.*)\)")),
    ("tag_values", re.compile(r"tag_values\((.*?),\s?(.*)\)")),
    ("suggest_tagk", re.compile(r"suggest_tagk\((.*)\)")),
    ("suggest_tagv", re.compile(r"suggest_tagv\((.*)\)")),
)


class VariableError(ValueError):
    pass


@dataclass
class Variable:
    name: str
    options: list[str]
    # ALL, one value, or several (multi).
    current: str | list[str]
    all_value: str | None = None
    multi: bool = False

    def values(self) -> list[str]:
        """The concrete values selected (every option for All): what a repeat iterates over."""
        if self.is_all():
            return list(self.options)
        return list(self.current) if isinstance(self.current, list) else [self.current]

    def is_all(self) -> bool:
        return self.current == ALL or (isinstance(self.current, list) and ALL in self.current)


@dataclass
class Scope:
    """The dashboard's variables, plus the values a repeated row or panel fixes."""

    variables: dict[str, Variable] = field(default_factory=dict)
    scoped: dict[str, str] = field(default_factory=dict)

    def with_scoped(self, values: Mapping[str, str]) -> Scope:
        return Scope(self.variables, {**self.scoped, **values})

    def replace(self, text: str | None, fmt: str = "glob") -> str:
        if text is None:
            return ""

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2) or match.group(4)
            explicit = match.group(3) or match.group(6)
            if name in self.scoped:
                return _format(name, self.scoped[name], explicit or fmt)
            variable = self.variables.get(name)
            if variable is None:
                return match.group(0)
            if variable.is_all():
                if variable.all_value:
                    return variable.all_value
                return _format(name, variable.options, explicit or fmt)
            return _format(name, variable.current, explicit or fmt)

        return _VARIABLE.sub(substitute, text)


def _format(name: str, value: str | list[str], fmt: str) -> str:
    if isinstance(value, str):
        return value
    if len(value) == 1:
        return value[0]
    if fmt == "pipe":
        return "|".join(value)
    if fmt == "distributed":
        return ",".join([value[0], *(f"{name}={item}" for item in value[1:])])
    if fmt == "csv":
        return ",".join(value)
    return "{" + ",".join(value) + "}"


class Lookups:
    """What metricFindQuery asks the router; ``get(path, params)`` returns the decoded JSON."""

    def __init__(self, get: Callable[[str, dict[str, Any]], Any], lookup_limit: int) -> None:
        self.get, self.lookup_limit = get, lookup_limit

    def find(self, query: str) -> list[str]:
        for kind, pattern in _FIND_QUERIES:
            match = pattern.search(query)
            if match is None:
                continue
            if kind in ("metrics", "suggest_tagk", "suggest_tagv"):
                suggest_type = {"metrics": "metrics", "suggest_tagk": "tagk", "suggest_tagv": "tagv"}[kind]
                result = self.get("/api/suggest", {"type": suggest_type, "q": match.group(1), "max": self.lookup_limit})
                return [str(item) for item in result or []]
            if kind == "tag_names":
                return self._tag_names(match.group(1))
            return self._tag_values(match.group(1), match.group(2))
        return []

    def _tag_names(self, metric: str) -> list[str]:
        if not metric:
            return []
        result = self.get("/api/search/lookup", {"m": metric, "limit": 1000})
        names: list[str] = []
        for row in result.get("results", []):
            names += [key for key in row.get("tags", {}) if key not in names]
        return names

    def _tag_values(self, metric: str, keys: str) -> list[str]:
        if not metric or not keys:
            return []
        parts = [key.strip() for key in keys.split(",")]
        key = parts[0]
        selector = ",".join([f"{key}=*", *parts[1:]])
        result = self.get("/api/search/lookup", {"m": f"{metric}{{{selector}}}", "limit": self.lookup_limit})
        values: list[str] = []
        for row in result.get("results", []):
            value = row.get("tags", {}).get(key)
            if value is not None and value not in values:
                values.append(value)
        return values


def _sorted(options: list[str], sort: int) -> list[str]:
    if sort in (1, 2):
        return sorted(options, reverse=sort == 2)
    if sort in (5, 6):
        return sorted(options, key=str.lower, reverse=sort == 6)
    if sort in (3, 4, 7, 8):

        def number(text: str) -> float:
            found = re.search(r"-?\d+(\.\d+)?", text)
            return float(found.group(0)) if found else float("-inf")

        return sorted(options, key=number, reverse=sort in (4, 8))
    return options


def _current(model: Mapping[str, Any], options: list[str]) -> str | list[str]:
    """The saved selection if still valid, else the first option (All when it is offered)."""
    include_all, multi = bool(model.get("includeAll")), bool(model.get("multi"))
    saved = (model.get("current") or {}).get("value")
    saved_values = saved if isinstance(saved, list) else ([saved] if saved not in (None, "") else [])
    if saved_values and ((ALL in saved_values and include_all) or all(v in options for v in saved_values)):
        return ALL if ALL in saved_values else (saved_values if multi else saved_values[0])
    if include_all:
        return ALL
    if not options:
        return ""
    return [options[0]] if multi else options[0]


def resolve_variables(templating: Sequence[Mapping[str, Any]], lookups: Lookups, datasource_uid: str) -> Scope:
    """Every variable in dashboard order, each seeing the ones before it (chained variables)."""
    scope = Scope()
    for model in templating:
        name, kind = model["name"], model.get("type", "query")
        if kind == "query":
            source = model.get("datasource") or {}
            if source.get("uid") != datasource_uid:
                raise VariableError(f"variable {name}: data source {source} is not the router ({datasource_uid})")
            query = model.get("query")
            text = query.get("query", "") if isinstance(query, Mapping) else str(query or "")
            options = lookups.find(scope.replace(text, "distributed")) if text else []
        elif kind == "custom":
            options = [item.strip() for item in str(model.get("query", "")).split(",") if item.strip()]
        elif kind == "constant":
            options = [str(model.get("query", ""))]
        else:
            raise VariableError(f"variable {name}: type {kind!r} is not supported by the verification")
        regex = model.get("regex")
        if regex:
            options = [option for option in options if re.search(regex, option)]
        options = _sorted(list(dict.fromkeys(options)), int(model.get("sort") or 0))
        scope.variables[name] = Variable(
            name, options, _current(model, options), model.get("allValue") or None, bool(model.get("multi"))
        )
    return scope
