"""The platform configuration as a Dagster resource, for code that needs more than one section."""

import dagster as dg
from pydantic import PrivateAttr

from rtdp_dagster.config import Settings, load_settings


class PlatformConfigResource(dg.ConfigurableResource):
    """The validated rtdp configuration (rtdp.yaml plus RTDP_* environment overrides).

    Loaded on first use and kept for the life of the instance: the file and the environment are read
    once per run (or sensor tick), not at every call.
    """

    config_file: str | None = None
    _settings: Settings | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings
