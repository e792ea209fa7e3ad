"""The few calls the demo makes to a running Dagster webserver, through its public GraphQL API.

Turning schedules and sensors on and launching an asset backfill go through the webserver (not
in-process), so the daemon executes them and they show in the UI exactly as if clicked there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
# The demo's own runs go ahead of the scheduled catch-up runs queued for the same two run slots.
AHEAD_OF_SCHEDULES = {"dagster/priority": "10"}

_AUTOMATIONS = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { name location { name }
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } } }
    }
    ... on PythonError { message }
  }
}"""
_START_SCHEDULE = """
mutation($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) { __typename ... on PythonError { message } }
}"""
_START_SENSOR = """
mutation($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) { __typename ... on PythonError { message } }
}"""
_JOBS = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}"""
_LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConflict { message }
  }
}"""
_LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
  }
}"""
_BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      assetBackfillData { assetBackfillStatuses { __typename
        ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted numPartitionsInProgress
                                             numPartitionsMaterialized numPartitionsFailed } } }
    }
    ... on PythonError { message }
  }
}"""
_CHECKS = """
query {
  assetNodes {
    assetKey { path }
    assetChecksOrError { __typename ... on AssetChecks { checks { name
      executionForLatestMaterialization { status evaluation { severity } } } } }
  }
}"""


class DagsterApiError(Exception):
    """The webserver refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class BackfillProgress:
    status: str
    targeted: int
    materialized: int
    failed: int
    in_progress: int

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_BACKFILL


class DagsterApi:
    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.url = f"{base_url.rstrip('/')}/graphql"
        self.timeout_s = timeout_s

    def _call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = requests.post(
                self.url, json={"query": query, "variables": variables or {}}, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise DagsterApiError(f"Dagster webserver at {self.url} unreachable: {exc}") from None
        if not response.ok:
            raise DagsterApiError(f"Dagster GraphQL HTTP {response.status_code}: {response.text[:300]}")
        body = response.json()
        if body.get("errors"):
            raise DagsterApiError(f"Dagster GraphQL error: {body['errors'][0].get('message')}")
        return body["data"]

    @staticmethod
    def _ok(result: dict[str, Any], what: str) -> dict[str, Any]:
        if "message" in result or result.get("__typename", "").endswith("Error"):
            raise DagsterApiError(f"{what}: {result.get('__typename')}: {result.get('message', result)}")
        return result

    def start_all_automations(self) -> list[str]:
        """Turn every schedule and sensor of every repository on; returns the names turned on."""
        repositories = self._ok(self._call(_AUTOMATIONS)["repositoriesOrError"], "list repositories")
        started = []
        for repo in repositories["nodes"]:
            where = {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"]}
            for schedule in repo["schedules"]:
                if schedule["scheduleState"]["status"] != "RUNNING":
                    selector = {**where, "scheduleName": schedule["name"]}
                    self._ok(self._call(_START_SCHEDULE, {"selector": selector})["startSchedule"], schedule["name"])
                    started.append(schedule["name"])
            for sensor in repo["sensors"]:
                if sensor["sensorState"]["status"] != "RUNNING":
                    selector = {**where, "sensorName": sensor["name"]}
                    self._ok(self._call(_START_SENSOR, {"selector": selector})["startSensor"], sensor["name"])
                    started.append(sensor["name"])
        return started

    def launch_asset_backfill(self, ranges: dict[str, tuple[str, str]], title: str) -> str:
        """An asset backfill of each asset over its (first, last) partition keys; returns its id."""
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": [asset]}, "partitions": {"range": {"start": first, "end": last}}}
                for asset, (first, last) in ranges.items()
            ],
            "title": title,
            "tags": [{"key": key, "value": value} for key, value in AHEAD_OF_SCHEDULES.items()],
        }
        result = self._call(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        return self._ok(result, "launch backfill")["backfillId"]

    def launch_run(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        """A run of a job (found in whichever repository has it) with this run config; returns its id."""
        repositories = self._ok(self._call(_JOBS)["repositoriesOrError"], "list repositories")
        found = [repo for repo in repositories["nodes"] if job in {j["name"] for j in repo["jobs"]}]
        if not found:
            raise DagsterApiError(f"launch {job}: no repository has this job")
        selector = {
            "repositoryLocationName": found[0]["location"]["name"],
            "repositoryName": found[0]["name"],
            "jobName": job,
        }
        params = {
            "selector": selector,
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
        }
        result = self._call(_LAUNCH_RUN, {"params": params})["launchRun"]
        if result.get("__typename") != "LaunchRunSuccess":
            problems = [e["message"] for e in result.get("errors", [])] or [result.get("message", str(result))]
            raise DagsterApiError(f"launch {job}: {result.get('__typename')}: {'; '.join(problems)}")
        return result["run"]["runId"]

    def backfill_progress(self, backfill_id: str) -> BackfillProgress:
        backfill = self._ok(self._call(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"], "backfill")
        counts = [
            row
            for row in (backfill.get("assetBackfillData") or {}).get("assetBackfillStatuses", [])
            if row.get("__typename") == "AssetPartitionsStatusCounts"
        ]
        return BackfillProgress(
            status=backfill["status"],
            targeted=sum(row["numPartitionsTargeted"] for row in counts),
            materialized=sum(row["numPartitionsMaterialized"] for row in counts),
            failed=sum(row["numPartitionsFailed"] for row in counts),
            in_progress=sum(row["numPartitionsInProgress"] for row in counts),
        )

    def latest_checks(self) -> list[dict[str, str]]:
        """Every asset check with the status of its execution for its asset's latest materialization."""
        rows = []
        for node in self._call(_CHECKS)["assetNodes"]:
            for check in (node.get("assetChecksOrError") or {}).get("checks", []):
                execution = check.get("executionForLatestMaterialization") or {}
                rows.append(
                    {
                        "asset": "/".join(node["assetKey"]["path"]),
                        "check": check["name"],
                        "status": execution.get("status", "NOT_RUN"),
                        "severity": ((execution.get("evaluation") or {}).get("severity") or ""),
                    }
                )
        return rows
