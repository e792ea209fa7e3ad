"""The master data entities (pydantic, unknown fields refused) and one validated version of them.

Ids are named like the point tags they match: a server is ``host``, a site ``site``, an
application ``app``. A topology row (``Deployment``) says that an app runs on a host; exactly one
row per host is ``primary``: that app is what enrichment tags the host's points with.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Site, app, region, role and team ids: lower case, safe as OpenTSDB tag values and in SQL literals.
ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
# Hosts keep the names their metrics carry (e.g. NAB's "i-a2eb1cd9" or "grok_asg_anomaly").
HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(moment: dt.datetime) -> int:
    """Milliseconds since the epoch, exact (no float rounding)."""
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


class _Record(BaseModel):
    # A misspelt field must be an error, not a silently missing attribute.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Manifest(_Record):
    version: int = Field(ge=1)
    # When this version starts to describe the world (event time of the points it enriches).
    valid_from: dt.datetime
    description: str = Field(min_length=1)

    @field_validator("valid_from")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None or value.utcoffset() != dt.timedelta(0):
            raise ValueError("must be an ISO timestamp in UTC, e.g. 2026-01-01T00:00:00Z")
        return value.astimezone(dt.UTC)

    @property
    def valid_from_ms(self) -> int:
        return epoch_ms(self.valid_from)


class Site(_Record):
    site: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    region: str = Field(pattern=ID_PATTERN)
    provider: Literal["onprem", "aws", "azure", "gcp"]
    city: str | None = None


class Application(_Record):
    app: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1)
    # The owning team, e.g. team-web: who is paged for the app's hosts.
    owner: str = Field(pattern=ID_PATTERN)
    tier: Literal["critical", "standard", "best-effort"] = "standard"


class Server(_Record):
    host: str = Field(pattern=HOST_PATTERN, max_length=256)
    site: str = Field(min_length=1)
    role: str = Field(pattern=ID_PATTERN)
    environment: Literal["prod", "staging", "dev"]
    os: str | None = None
    cpu_cores: int | None = Field(default=None, ge=1)


class Deployment(_Record):
    """One topology row: app runs on host."""

    app: str = Field(min_length=1)
    host: str = Field(min_length=1)
    primary: bool


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A host with its site and primary app resolved: what enrichment needs about one host."""

    host: str
    site: str
    site_name: str
    region: str
    app: str
    app_name: str
    owner: str
    role: str
    environment: str
    # Every app on the host, primary included, sorted.
    apps: tuple[str, ...]


class MasterVersion(BaseModel):
    """One validated version folder (references resolved, one primary app per host)."""

    model_config = ConfigDict(frozen=True)

    folder: Path
    manifest: Manifest
    sites: tuple[Site, ...]
    applications: tuple[Application, ...]
    servers: tuple[Server, ...]
    topology: tuple[Deployment, ...]

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def valid_from_ms(self) -> int:
        return self.manifest.valid_from_ms

    def hosts(self) -> list[HostEntry]:
        """One entry per server, in file order."""
        sites = {site.site: site for site in self.sites}
        apps = {app.app: app for app in self.applications}
        primary = {row.host: row.app for row in self.topology if row.primary}
        on_host: dict[str, set[str]] = {}
        for row in self.topology:
            on_host.setdefault(row.host, set()).add(row.app)
        entries = []
        for server in self.servers:
            site, app = sites[server.site], apps[primary[server.host]]
            entries.append(
                HostEntry(
                    host=server.host,
                    site=site.site,
                    site_name=site.name,
                    region=site.region,
                    app=app.app,
                    app_name=app.name,
                    owner=app.owner,
                    role=server.role,
                    environment=server.environment,
                    apps=tuple(sorted(on_host[server.host])),
                )
            )
        return entries


class MasterData(BaseModel):
    """Every version of a master data directory, validated, in version order."""

    model_config = ConfigDict(frozen=True)

    directory: Path
    versions: tuple[MasterVersion, ...]

    @property
    def latest(self) -> MasterVersion:
        return self.versions[-1]

    def get(self, version: int) -> MasterVersion:
        for item in self.versions:
            if item.version == version:
                return item
        raise KeyError(version)

    def valid_to_ms(self, version: int) -> int | None:
        """When the next version in the directory takes over (None for the latest)."""
        later = [item.valid_from_ms for item in self.versions if item.version > version]
        return min(later) if later else None
