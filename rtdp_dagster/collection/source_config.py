"""Configuration of collection sources: the part every source shares, and one model per kind.

Kept free of heavy imports: rtdp_dagster.config imports it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WaveConfig(BaseModel):
    """When a source is read. Wave 1 follows "now"; waves 2 and 3 re-read closed windows."""

    model_config = ConfigDict(extra="forbid")

    # Window length of wave 1, and how often its ticker plans a window.
    window_s: float = Field(default=10.0, gt=0)
    # A long outage is caught up in windows of at most this length.
    max_window_s: float = Field(default=300.0, gt=0)
    # Offsets of the catch-up waves behind "now" (ARCHITECTURE.md: 5 minutes, 1 hour).
    wave2_offset_s: float = Field(default=300.0, ge=0)
    wave3_offset_s: float = Field(default=3600.0, ge=0)


class SourceConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Unique, used in the collection log, the durable queue and Dagster job names.
    name: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    # datastore.instance.database.table.version.dbpartition.tablepartition
    namespace: str = Field(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){6}$")
    enabled: bool = True
    waves: WaveConfig = Field(default_factory=WaveConfig)
