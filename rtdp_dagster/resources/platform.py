"""The platform configuration as a Dagster resource, for code that needs more than one connection."""

import dagster as dg

from rtdp_dagster.config import Settings, load_settings


class PlatformConfigResource(dg.ConfigurableResource):
    """The validated rtdp configuration (rtdp.yaml plus RTDP_* environment overrides)."""

    config_file: str | None = None

    def settings(self) -> Settings:
        return load_settings(self.config_file)
