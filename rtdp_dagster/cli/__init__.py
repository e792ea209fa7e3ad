"""The `rtdp` command line, one module per command group; each registers its subcommands and handlers.

Handlers import Spark, Dagster, pandas and the like inside the function that needs them, so that
`rtdp --help` and the light commands start in a fraction of a second; everything cheap is imported
at the top of its module.
"""

from rtdp_dagster.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
