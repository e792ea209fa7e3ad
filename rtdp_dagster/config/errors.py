"""The one error configuration problems raise."""


class ConfigError(Exception):
    """A configuration problem, with a message that names the offending key."""
