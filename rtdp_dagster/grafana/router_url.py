"""Which router URL the Grafana commands use: the command line, then grafana.router_url, then the
local router of the serving configuration."""

from __future__ import annotations

from rtdp_dagster.config import Settings
from rtdp_dagster.serving.address import local_router_url


class RouterUrlError(ValueError):
    pass


def router_url(settings: Settings, override: str | None = None) -> str:
    url = override or settings.grafana.router_url
    if url:
        return url.rstrip("/")
    if settings.serve.host and settings.serve.port:
        return local_router_url(settings.serve)
    raise RouterUrlError("no router URL: pass --router-url or set grafana.router_url")
