"""Great Expectations as a Dagster resource: imported in the background from the start of a run.

Importing GX costs about 9 s of a run process here (``gx_start_s`` of the first check of a run). A run
whose checks use GX initializes this resource before its first step (the in-process executor sets up
the run's resources once), so the import overlaps the asset steps, which mostly wait on Spark; the
checks wait for it to finish (``ready``) before they use GX.
"""

from __future__ import annotations

import logging
import threading

import dagster as dg
from pydantic import PrivateAttr

logger = logging.getLogger(__name__)


def _import_great_expectations() -> None:
    try:
        import great_expectations  # noqa: F401
        from great_expectations.data_context.types.base import DataContextConfig  # noqa: F401
    except Exception:  # the check imports it again and fails with the error where it is seen
        logger.exception("importing Great Expectations in the background failed")


class GreatExpectationsResource(dg.ConfigurableResource):
    """Starts importing Great Expectations when a run that uses it starts; ``ready`` waits for it."""

    _import: threading.Thread | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._import = threading.Thread(target=_import_great_expectations, name="gx-import", daemon=True)
        self._import.start()

    def ready(self) -> None:
        if self._import is not None:
            self._import.join()
