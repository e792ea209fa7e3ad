"""Loading the configuration: built-in defaults, then the YAML file, then RTDP_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rtdp_dagster.config.errors import ConfigError
from rtdp_dagster.config.settings import Settings

ENV_PREFIX = "RTDP_"
CONFIG_ENV = "RTDP_CONFIG"
DEFAULT_CONFIG_FILE = "rtdp.yaml"


def _set_path(tree: dict[str, Any], dotted: list[str], value: str) -> None:
    node = tree
    for key in dotted[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(dotted)}: cannot override inside non-mapping key {key!r}")
        node = child
    # Scalars stay strings (validation converts "9092" or "false" where the key wants it, and a
    # string key keeps "false" as text); lists and mappings are written in YAML/JSON flow style.
    node[dotted[-1]] = yaml.safe_load(value) if value.lstrip().startswith(("[", "{")) else value


def env_overrides(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested overrides from RTDP_* variables, and a map from dotted key to variable name."""
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        dotted = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(dotted):
            raise ConfigError(f"{name}: empty key segment in environment override")
        _set_path(tree, dotted, value)
        origin[".".join(dotted)] = name
    return tree, origin


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, source: str, origin: dict[str, str]) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        where = origin.get(key, source)
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{where}: {key}: {message} (got {item.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load and validate the configuration; raises ConfigError naming the bad key."""
    environ = dict(os.environ if environ is None else environ)
    explicit = path or environ.get(CONFIG_ENV)
    config_path = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if config_path.exists():
        try:
            loaded = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_path}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_path}: top level must be a mapping")
        data = loaded
    elif explicit:
        raise ConfigError(f"{config_path}: configuration file not found")
    overrides, origin = env_overrides(environ)
    try:
        return Settings.model_validate(merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(config_path), origin)) from None
