"""Running a suite with Great Expectations 1.x: an ephemeral context, results, and Data Docs HTML.

One context per process and Data Docs folder (GX is slow to import and to set up, so it is
imported here only, when a check first runs). Every validation goes through a checkpoint whose
action rebuilds the Data Docs site under the folder; the page of each validation is returned
for the check's metadata. Analytics are off: nothing leaves the machine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from rtdp_dagster.quality.suites import Suite

SITE = "rtdp"


@dataclass(frozen=True)
class ExpectationResult:
    check: str
    type: str
    success: bool
    count_column: str | None
    # GX's own summary: unexpected_count, partial_unexpected_index_list, observed_value, ...
    result: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    version: str
    success: bool
    expectations: list[ExpectationResult]
    docs_page: str | None

    def for_check(self, check: str) -> list[ExpectationResult]:
        return [e for e in self.expectations if e.check == check]


class GxRunner:
    def __init__(self, docs_dir: Path) -> None:
        import great_expectations as gx
        from great_expectations.checkpoint.actions import UpdateDataDocsAction
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        docs_dir.mkdir(parents=True, exist_ok=True)
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={SITE: site},
        )
        self._gx = gx
        self._docs_action = UpdateDataDocsAction
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self._sources = {
            # The Spark suites judge a schema (a ``limit(0)`` frame): nothing to cache on the server.
            "spark": self.context.data_sources.add_spark("rtdp_spark", persist=False),
            "pandas": self.context.data_sources.add_pandas("rtdp_pandas"),
        }
        self._checkpoints: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def _checkpoint(self, suite: Suite) -> Any:
        """The checkpoint of a suite, rebuilt when the suite's version changed."""
        gx = self._gx
        known = self._checkpoints.get(suite.name)
        if known is not None and known[0] == suite.version:
            return known[1]
        if known is not None:
            self.context.checkpoints.delete(suite.name)
            self.context.validation_definitions.delete(suite.name)
            self.context.suites.delete(suite.name)
        source = self._sources[suite.engine]
        try:
            asset = source.get_asset(suite.name)
        except LookupError:
            asset = source.add_dataframe_asset(suite.name)
        try:
            batch = asset.get_batch_definition("whole")
        except (KeyError, LookupError):
            batch = asset.add_batch_definition_whole_dataframe("whole")
        gx_suite = gx.ExpectationSuite(name=suite.name, meta={"version": suite.version})
        for item in suite.expectations:
            expectation = getattr(gx.expectations, item.type)(
                **item.kwargs, meta={"check": item.check, "count_column": item.count_column}
            )
            gx_suite.add_expectation(expectation)
        gx_suite = self.context.suites.add(gx_suite)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
        )
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
        if suite.index_columns:
            result_format["unexpected_index_column_names"] = list(suite.index_columns)
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[definition],
                actions=[self._docs_action(name="data_docs", site_names=[SITE])],
                result_format=result_format,
            )
        )
        self._checkpoints[suite.name] = (suite.version, checkpoint)
        return checkpoint

    def run(self, suite: Suite, frame: Any, run_name: str) -> SuiteRun:
        """Validate a DataFrame (Spark for spark suites, pandas for pandas suites) against the suite."""
        from great_expectations.core.run_identifier import RunIdentifier

        with self._lock:
            checkpoint = self._checkpoint(suite)
            outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_name))
            ((identifier, validation),) = outcome.run_results.items()
            urls = self.context.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE])
        results = []
        for item in validation.results:
            meta = item.expectation_config.meta or {}
            info = item.exception_info or {}
            error = info.get("exception_message") if info.get("raised_exception") else None
            results.append(
                ExpectationResult(
                    check=str(meta.get("check")),
                    type=item.expectation_config.type,
                    success=bool(item.success),
                    count_column=meta.get("count_column"),
                    result=dict(item.result or {}),
                    error=error,
                )
            )
        page = urls[0]["site_url"] if urls and urls[0].get("site_url") else None
        docs = unquote(urlparse(page).path) if page and page.startswith("file://") else page
        return SuiteRun(suite.name, suite.version, bool(validation.success), results, docs)


_runners: dict[Path, GxRunner] = {}
_runners_lock = threading.Lock()


def runner_for(docs_dir: Path) -> GxRunner:
    """The process's GX runner writing Data Docs under docs_dir."""
    with _runners_lock:
        if docs_dir not in _runners:
            _runners[docs_dir] = GxRunner(docs_dir)
        return _runners[docs_dir]
