"""The configuration reference (docs/configuration.md), generated from the configuration model.

Each key's description is the comment written above its field in the model (or the field's
description), so the reference cannot drift from the code: a test compares it with the file.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from rtdp_dagster.config import Settings

REFERENCE_FILE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
_FIELD = re.compile(r"^\s{4}(\w+)\s*:")

_HEADER = """\
# Configuration reference

Generated from the configuration model by `rtdp config reference` (do not edit by hand).

One file, `rtdp.yaml` in the working directory or `$RTDP_CONFIG`, validated on load; every key
has a default. Environment variables override the file: `RTDP_<SECTION>__<KEY>`, `__` descending
one level (for example `RTDP_STACK__KAFKA__PORT=19092`). Lists and mappings (sources, topics,
metric kinds) are set in the file.
"""


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment lines right above each field of the model's class body (its own and its bases')."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in lines:
            stripped = line.strip()
            if line.startswith("    #") and not line.startswith("     "):
                pending.append(stripped.lstrip("#").strip())
            elif match := _FIELD.match(line):
                if pending:
                    found[match.group(1)] = " ".join(pending)
                pending = []
            elif stripped:
                pending = []
    return found


def _nested_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _type_name(annotation: object) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(arg) for arg in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    text = str(annotation).replace("typing.", "")
    return re.sub(r"[\w.]+\.(\w+)", r"\1", text)


def _default(field: typing.Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
    else:
        return "(required)"
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} item(s), see the model"
    text = json.dumps(value, default=str)
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}...`"


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    comments = _comments(model)
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _nested_model(field.annotation)
        description = comments.get(name) or field.description or ""
        if nested is not None:
            own_doc = nested.__dict__.get("__doc__") or ""  # not BaseModel's own docstring
            doc = inspect.cleandoc(own_doc).split("\n\n")[0].replace("\n", " ")
            rows.append((key, "section", "", description or doc))
            rows += _rows(nested, f"{key}.")
        else:
            rows.append((key, _type_name(field.annotation), _default(field), description))
    return rows


def markdown() -> str:
    lines = [_HEADER, "| key | type | default | what it is |", "|---|---|---|---|"]
    for key, kind, default, description in _rows(Settings, ""):
        cell = description.replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | {default} | {cell} |")
    return "\n".join(lines) + "\n"


def write_reference(path: Path = REFERENCE_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown())
    return path
