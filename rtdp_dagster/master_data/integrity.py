"""Checks across the entities of one version: unique ids, references that resolve, one primary app per host.

Row-level validation (types, patterns, unknown fields) has passed before these run, so every
problem found here is about how rows relate, and names the row that breaks the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtdp_dagster.master_data.errors import Problem
from rtdp_dagster.master_data.models import Application, Deployment, Server, Site
from rtdp_dagster.master_data.rows import M, Row


@dataclass(frozen=True)
class VersionRows:
    sites: Sequence[Row[Site]]
    applications: Sequence[Row[Application]]
    servers: Sequence[Row[Server]]
    topology: Sequence[Row[Deployment]]
    # Entity name -> the file it was read from, to say where a missing reference was looked for.
    files: dict[str, Path]


def _unique(rows: Sequence[Row[M]], field: str, key: Callable[[M], Hashable], what: str) -> list[Problem]:
    first: dict[Hashable, Row[M]] = {}
    problems = []
    for row in rows:
        value = key(row.item)
        if value in first:
            problems.append(row.problem(field, f"duplicate {what} {value!r} (first at row {first[value].number})"))
        else:
            first[value] = row
    return problems


def check_version(rows: VersionRows) -> list[Problem]:
    """Every integrity problem of one version, in file order per rule."""
    problems = [
        *_unique(rows.sites, "site", lambda item: item.site, "site"),
        *_unique(rows.applications, "app", lambda item: item.app, "app"),
        *_unique(rows.servers, "host", lambda item: item.host, "host"),
        *_unique(rows.topology, "app", lambda item: (item.app, item.host), "deployment (app, host)"),
    ]
    sites = {row.item.site for row in rows.sites}
    apps = {row.item.app for row in rows.applications}
    hosts = {row.item.host for row in rows.servers}
    for server in rows.servers:
        if server.item.site not in sites:
            problems.append(server.problem("site", f"unknown site {server.item.site!r}: not in {rows.files['sites']}"))
    for deployment in rows.topology:
        if deployment.item.app not in apps:
            problems.append(
                deployment.problem("app", f"unknown app {deployment.item.app!r}: not in {rows.files['applications']}")
            )
        if deployment.item.host not in hosts:
            problems.append(
                deployment.problem("host", f"unknown host {deployment.item.host!r}: not in {rows.files['servers']}")
            )
    problems.extend(_one_primary_per_host(rows))
    return problems


def _one_primary_per_host(rows: VersionRows) -> list[Problem]:
    """Enrichment tags a host's points with exactly one app: its primary one."""
    problems = []
    primary: dict[str, Row[Deployment]] = {}
    for deployment in rows.topology:
        if not deployment.item.primary:
            continue
        first = primary.setdefault(deployment.item.host, deployment)
        if first is not deployment:
            problems.append(
                deployment.problem(
                    "primary",
                    f"host {deployment.item.host!r} already has primary app {first.item.app!r} "
                    f"(row {first.number}); a host has exactly one",
                )
            )
    for server in rows.servers:
        if server.item.host not in primary:
            problems.append(
                server.problem("host", f"no primary app: no row of {rows.files['topology']} with primary true")
            )
    return problems
