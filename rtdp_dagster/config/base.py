"""The base of every configuration section model."""

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")
