"""The one Grafana data source of the platform: the query router, as OpenTSDB 2.4.

Provisioning, publishing, the dashboards and the panel verification all read it from here, so
they cannot disagree on its uid or on how Grafana talks to the router.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.models.dashboard import DataSourceRef

from rtdp_dagster.grafana.opentsdb import DATASOURCE_TYPE

UID = "rtdp-router"
NAME = "rtdp router"
# Grafana's OpenTSDB settings: tsdbVersion 3 is "==2.4" (results carry query.index, filters,
# rate options); tsdbResolution 2 is millisecond (msResolution in every /api/query).
TSDB_VERSION = 3
TSDB_RESOLUTION = 2
LOOKUP_LIMIT = 1000
JSON_DATA: dict[str, Any] = {
    "tsdbVersion": TSDB_VERSION,
    "tsdbResolution": TSDB_RESOLUTION,
    "lookupLimit": LOOKUP_LIMIT,
}
# Environment variable Grafana substitutes in the provisioning file.
ROUTER_URL_ENV = "RTDP_ROUTER_URL"

FOLDER_UID = "rtdp"
FOLDER_TITLE = "rtdp"


def reference() -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=UID)


def api_payload(router_url: str) -> dict[str, Any]:
    """The data source as Grafana's HTTP API takes it (POST /api/datasources, PUT .../uid/<uid>)."""
    return {
        "uid": UID,
        "name": NAME,
        "type": DATASOURCE_TYPE,
        # Grafana's server forwards the browser's queries: the router need not be reachable from browsers.
        "access": "proxy",
        "url": router_url,
        "isDefault": False,
        "jsonData": dict(JSON_DATA),
    }


def provisioning() -> dict[str, Any]:
    """grafana/provisioning/datasources/rtdp.yaml."""
    source = {**api_payload(f"${{{ROUTER_URL_ENV}}}"), "editable": False}
    return {"apiVersion": 1, "datasources": [source]}


def dashboards_provisioning(dashboards_dir_env: str) -> dict[str, Any]:
    """grafana/provisioning/dashboards/rtdp.yaml: a file provider for grafana/dashboards."""
    provider = {
        "name": "rtdp",
        "orgId": 1,
        "type": "file",
        "folder": FOLDER_TITLE,
        "folderUid": FOLDER_UID,
        "disableDeletion": False,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": f"${{{dashboards_dir_env}}}", "foldersFromFilesStructure": False},
    }
    return {"apiVersion": 1, "providers": [provider]}
