"""`python -m rtdp_dagster.cli`: how the stack starts `rtdp ingest`, `rtdp stream` and `rtdp serve`."""

import sys

from rtdp_dagster.cli.main import main

sys.exit(main())
