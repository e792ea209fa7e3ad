"""Which router URL the Grafana commands use: the command line, then grafana.router_url, then the
local router of the serving configuration."""

from __future__ import annotations

from rtdp_dagster.config import Settings


class RouterUrlError(ValueError):
    pass


def router_url(settings: Settings, override: str | None = None) -> str:
    url = override or settings.grafana.router_url
    if url:
        return url.rstrip("/")
    # The serve section belongs to the router (`rtdp serve`); read defensively so either can change.
    serve = getattr(settings, "serve", None)
    host, port = getattr(serve, "host", None), getattr(serve, "port", None)
    if host and port:
        return f"http://{host}:{port}"
    raise RouterUrlError("no router URL: pass --router-url or set grafana.router_url")
