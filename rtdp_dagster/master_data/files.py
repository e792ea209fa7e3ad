"""Reading the files of record: a directory of version folders into validated models.

Layout::

    master_data/
      v0001/
        manifest.yaml          version, valid_from (ISO, UTC), description
        sites.yaml|.csv        one row per site
        applications.yaml|.csv one row per application
        servers.yaml|.csv      one row per host
        topology.yaml|.csv     one row per (app, host), with primary true|false
      v0002/ ...

Each entity may be YAML (a list of mappings) or CSV (a header row, empty cells are absent
fields). Every problem of every file is collected before failing, each naming the file, the row
and the field; cross-entity checks run only on a version whose rows are all valid, so a bad row
never also shows up as a dangling reference.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rtdp_dagster.master_data.errors import MasterDataError, Problem
from rtdp_dagster.master_data.integrity import VersionRows, check_version
from rtdp_dagster.master_data.models import (
    Application,
    Deployment,
    Manifest,
    MasterData,
    MasterVersion,
    Server,
    Site,
)
from rtdp_dagster.master_data.rows import M, Row

MANIFEST_FILE = "manifest.yaml"
_SUFFIXES = (".yaml", ".yml", ".csv")
VERSION_FOLDER = re.compile(r"^v(\d+)$")


def version_folder_name(version: int) -> str:
    return f"v{version:04d}"


def _problems_of(
    error: ValidationError, file: Path, row: int | None, line: int | None, field_lines: dict[str, int]
) -> list[Problem]:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or None
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
        else:
            message = f"{item['msg']} (got {item['input']!r})"
        problems.append(Problem(file, message, field, row, field_lines.get(field or "", line)))
    return problems


def _validated(
    model: type[M],
    data: dict[str, Any],
    file: Path,
    number: int,
    line: int,
    field_lines: dict[str, int],
    problems: list[Problem],
) -> Row[M] | None:
    try:
        item = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_of(exc, file, number, line, field_lines))
        return None
    return Row(file, number, line, item, field_lines)


def _yaml_document(path: Path, problems: list[Problem]) -> tuple[Any, yaml.Node | None] | None:
    """The parsed document and its node tree (for line numbers); None after a syntax error."""
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(path, f"not valid YAML: {reason}", line=mark.line + 1 if mark else None))
        return None


def _key_lines(node: yaml.Node | None) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value}


def _read_yaml_rows(path: Path, model: type[M], problems: list[Problem]) -> list[Row[M]]:
    document = _yaml_document(path, problems)
    if document is None:
        return []
    data, node = document
    if data is None:
        data = []
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode | None):
        problems.append(Problem(path, "must be a list of mappings, one per row"))
        return []
    rows = []
    items = node.value if isinstance(node, yaml.SequenceNode) else []
    for number, (record, item_node) in enumerate(zip(data, items, strict=True), start=1):
        line = item_node.start_mark.line + 1
        if not isinstance(record, dict):
            problems.append(Problem(path, "must be a mapping of field: value", row=number, line=line))
            continue
        row = _validated(
            model, {str(k): v for k, v in record.items()}, path, number, line, _key_lines(item_node), problems
        )
        if row is not None:
            rows.append(row)
    return rows


def _header_problems(path: Path, header: list[str], model: type[BaseModel]) -> list[Problem]:
    fields = model.model_fields
    problems = [Problem(path, "unknown column", name, line=1) for name in header if name not in fields]
    problems += [Problem(path, "duplicate column", name, line=1) for name in set(header) if header.count(name) > 1]
    problems += [
        Problem(path, "required column is missing", name, line=1)
        for name, info in fields.items()
        if info.is_required() and name not in header
    ]
    return problems


def _read_csv_rows(path: Path, model: type[M], problems: list[Problem]) -> list[Row[M]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, skipinitialspace=True)
        header = [name.strip() for name in reader.fieldnames or []]
        if not header:
            problems.append(Problem(path, "empty file: expected a header row"))
            return []
        reader.fieldnames = header
        header_problems = _header_problems(path, header, model)
        if header_problems:
            # Every row would repeat the same complaint; the header is the one place to fix.
            problems.extend(header_problems)
            return []
        rows = []
        for number, record in enumerate(reader, start=1):
            # DictReader files extra cells under the key None.
            if None in record:
                problems.append(Problem(path, "more cells than columns", row=number, line=reader.line_num))
                continue
            data = {key: value.strip() for key, value in record.items() if value is not None and value.strip()}
            row = _validated(model, data, path, number, reader.line_num, {}, problems)
            if row is not None:
                rows.append(row)
    return rows


def _entity_file(folder: Path, entity: str, problems: list[Problem]) -> Path | None:
    found = [folder / f"{entity}{suffix}" for suffix in _SUFFIXES if (folder / f"{entity}{suffix}").is_file()]
    if not found:
        problems.append(Problem(folder, f"missing {entity}.yaml or {entity}.csv"))
        return None
    if len(found) > 1:
        problems.append(Problem(folder, f"{entity} is in {', '.join(p.name for p in found)}: keep exactly one"))
        return None
    return found[0]


def _read_entity(folder: Path, entity: str, model: type[M], problems: list[Problem]) -> list[Row[M]]:
    path = _entity_file(folder, entity, problems)
    if path is None:
        return []
    before = len(problems)
    rows = _read_csv_rows(path, model, problems) if path.suffix == ".csv" else _read_yaml_rows(path, model, problems)
    if not rows and len(problems) == before:
        problems.append(Problem(path, "no rows"))
    return rows


def _read_manifest(folder: Path, number: int, problems: list[Problem]) -> Manifest | None:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        problems.append(Problem(folder, f"missing {MANIFEST_FILE}"))
        return None
    document = _yaml_document(path, problems)
    if document is None:
        return None
    data, node = document
    if not isinstance(data, dict):
        problems.append(Problem(path, "must be a mapping with version, valid_from and description"))
        return None
    lines = _key_lines(node)
    try:
        manifest = Manifest.model_validate({str(k): v for k, v in data.items()})
    except ValidationError as exc:
        problems.extend(_problems_of(exc, path, None, None, lines))
        return None
    if manifest.version != number:
        problems.append(
            Problem(
                path, f"is {manifest.version} but the folder is {folder.name}", "version", line=lines.get("version")
            )
        )
        return None
    return manifest


def _read_version(folder: Path, number: int, problems: list[Problem]) -> tuple[Manifest | None, MasterVersion | None]:
    before = len(problems)
    manifest = _read_manifest(folder, number, problems)
    sites = _read_entity(folder, "sites", Site, problems)
    applications = _read_entity(folder, "applications", Application, problems)
    servers = _read_entity(folder, "servers", Server, problems)
    topology = _read_entity(folder, "topology", Deployment, problems)
    if len(problems) > before or manifest is None:
        return manifest, None
    files = {
        "sites": sites[0].file,
        "applications": applications[0].file,
        "servers": servers[0].file,
        "topology": topology[0].file,
    }
    integrity = check_version(VersionRows(sites, applications, servers, topology, files))
    if integrity:
        problems.extend(integrity)
        return manifest, None
    version = MasterVersion(
        folder=folder,
        manifest=manifest,
        sites=tuple(row.item for row in sites),
        applications=tuple(row.item for row in applications),
        servers=tuple(row.item for row in servers),
        topology=tuple(row.item for row in topology),
    )
    return manifest, version


def _order_problems(folders: list[tuple[int, Path]], manifests: dict[int, Manifest]) -> list[Problem]:
    """Versions must take over one after the other: valid_from strictly increasing with the version."""
    problems = []
    previous: tuple[int, Manifest] | None = None
    for number, folder in folders:
        manifest = manifests.get(number)
        if manifest is None:
            continue
        if previous is not None and manifest.valid_from <= previous[1].valid_from:
            problems.append(
                Problem(
                    folder / MANIFEST_FILE,
                    f"{manifest.valid_from.isoformat()} is not after {version_folder_name(previous[0])}'s "
                    f"valid_from {previous[1].valid_from.isoformat()}",
                    "valid_from",
                )
            )
        previous = (number, manifest)
    return problems


def version_folders(directory: Path) -> list[tuple[int, Path]]:
    """(version, folder) of every vNNNN folder, in version order."""
    found = []
    for path in directory.iterdir():
        match = VERSION_FOLDER.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def load_master_data(directory: str | Path) -> MasterData:
    """Read and validate every version under directory; raises MasterDataError listing every problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MasterDataError(f"{directory}: master data directory not found")
    folders = version_folders(directory)
    if not folders:
        raise MasterDataError(f"{directory}: no version folders (v0001, v0002, ...)")
    problems: list[Problem] = []
    seen: dict[int, Path] = {}
    for number, folder in folders:
        if number in seen:
            problems.append(Problem(folder, f"version {number} is also {seen[number].name}"))
        seen.setdefault(number, folder)
    manifests: dict[int, Manifest] = {}
    versions: list[MasterVersion] = []
    for number, folder in folders:
        manifest, version = _read_version(folder, number, problems)
        if manifest is not None:
            manifests.setdefault(number, manifest)
        if version is not None:
            versions.append(version)
    problems.extend(_order_problems(folders, manifests))
    if problems:
        raise MasterDataError.of(problems)
    return MasterData(directory=directory, versions=tuple(versions))
