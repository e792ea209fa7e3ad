"""What reads the data: the query router and the Grafana it feeds."""

import re

from pydantic import Field, field_validator

from rtdp_dagster.config.base import ConfigModel

# scheme://host[:port], nothing after it; "*" (every origin) only when written out.
ORIGIN = re.compile(r"\*|https?://[A-Za-z0-9.-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


class ServeConfig(ConfigModel):
    """The query router (`rtdp serve`): the OpenTSDB HTTP API over the realtime TSDB and the rollups."""

    host: str = "127.0.0.1"
    port: int = Field(default=4246, ge=0, le=65535)
    # Limits: a query outside them gets a 400 naming the limit.
    max_range: str = Field(default="3y", pattern=r"^\d+[smhdwy]$")
    max_series: int = Field(default=5000, ge=1)
    max_datapoints: int = Field(default=1_000_000, ge=1)
    request_timeout_s: float = Field(default=30.0, gt=0)
    # Larger request bodies get a 413 naming this limit (an OpenTSDB query body is a few kB).
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # Responses at least this large are gzipped for clients that accept it; smaller ones are not: on the
    # loopback or a LAN (Grafana's server next to the router) compressing costs more time than it saves.
    gzip_min_bytes: int = Field(default=1 << 20, ge=0)
    # Downsample intervals shorter than this read raw points from the realtime TSDB while the range lies
    # inside its retention; longer ones read the rollups where the history TSDB has them.
    realtime_below: str = Field(default="1h", pattern=r"^\d+[smhdwy]$")
    # How long the newest rollup bucket per metric and level, and the suggest lists, are reused.
    history_end_cache_s: float = Field(default=30.0, ge=0)
    metadata_cache_s: float = Field(default=30.0, ge=0)
    # History reads are reused this long (rollups change only when a partition is re-published); 0: off.
    history_cache_s: float = Field(default=60.0, ge=0)
    history_cache_entries: int = Field(default=256, ge=0)
    # Web origins whose pages may read the router from a browser (Grafana's "browser" access mode),
    # e.g. "https://grafana.example.com". Empty: none may. Grafana's default server (proxy) access
    # needs no CORS, and any page the operator opens could otherwise read every metric.
    cors_origins: list[str] = Field(default_factory=list)
    # Per metric, status text -> numeric code; published at /api/rtdp/value_mappings for dashboards.
    value_mappings: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not a web origin such as 'https://grafana.example.com' (or '*')")
        return origins


class GrafanaConfig(ConfigModel):
    """Grafana: where `rtdp grafana publish` pushes the dashboards; its token comes from GRAFANA_TOKEN only."""

    url: str = "http://127.0.0.1:3000"
    # The query router as Grafana's server reaches it (the data source URL). Empty: the local router.
    router_url: str = ""
    timeout_s: float = Field(default=10.0, gt=0)
