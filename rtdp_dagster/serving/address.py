"""Where the local query router (`rtdp serve`) answers: its base URL from the serve section."""

from __future__ import annotations

from rtdp_dagster.config import ServeConfig


def local_router_url(serve: ServeConfig) -> str:
    host = f"[{serve.host}]" if ":" in serve.host else serve.host
    return f"http://{host}:{serve.port}"
