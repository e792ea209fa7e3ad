"""Running a suite with Great Expectations 1.x: an ephemeral context, results, and Data Docs HTML.

One context per process and Data Docs folder (GX is slow to import and to set up, so it is
imported here only, when a check first runs). Every validation goes through a checkpoint; the
Data Docs site under the folder is then updated once for all validations of a call (``run_all``:
the days of a backfill), not once per validation (two thirds of a validation's time), and the
page of each validation is returned for the check's metadata. Analytics are off: nothing leaves
the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
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
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

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
        self._suite_id = ExpectationSuiteIdentifier
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
            gx.Checkpoint(name=suite.name, validation_definitions=[definition], result_format=result_format)
        )
        self._checkpoints[suite.name] = (suite.version, checkpoint)
        return checkpoint

    def run(self, suite: Suite, frame: Any, run_name: str) -> SuiteRun:
        """Validate a DataFrame (Spark for spark suites, pandas for pandas suites) against the suite."""
        return self.run_all([(suite, frame, run_name)])[0]

    def run_all(self, runs: Sequence[tuple[Suite, Any, str]]) -> list[SuiteRun]:
        """Each (suite, frame, run name) validated, then the Data Docs of them all built at once."""
        from great_expectations.core.run_identifier import RunIdentifier

        with self._lock:
            validations = []
            for suite, frame, run_name in runs:
                outcome = self._checkpoint(suite).run(
                    batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_name)
                )
                ((identifier, validation),) = outcome.run_results.items()
                validations.append((suite, identifier, validation))
            suites = {self._suite_id(name=suite.name) for suite, _, _ in validations}
            self.context.build_data_docs(
                site_names=[SITE], resource_identifiers=[i for _, i, _ in validations] + list(suites)
            )
            pages = [self._page(identifier) for _, identifier, _ in validations]
        return [
            _suite_run(suite, validation, page) for (suite, _, validation), page in zip(validations, pages, strict=True)
        ]

    def _page(self, identifier: Any) -> str | None:
        urls = self.context.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE])
        page = urls[0]["site_url"] if urls and urls[0].get("site_url") else None
        return unquote(urlparse(page).path) if page and page.startswith("file://") else page


def _suite_run(suite: Suite, validation: Any, docs: str | None) -> SuiteRun:
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
    return SuiteRun(suite.name, suite.version, bool(validation.success), results, docs)


_runners: dict[Path, GxRunner] = {}
_runners_lock = threading.Lock()


def runner_for(docs_dir: Path) -> GxRunner:
    """The process's GX runner writing Data Docs under docs_dir."""
    with _runners_lock:
        if docs_dir not in _runners:
            _runners[docs_dir] = GxRunner(docs_dir)
        return _runners[docs_dir]
