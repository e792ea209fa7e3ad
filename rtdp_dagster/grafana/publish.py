"""`rtdp grafana publish`: create or update the router data source, the rtdp folder and every
dashboard in a Grafana, by uid, through its HTTP API (grafana-client).

Idempotent: what already matches is left alone (no new dashboard versions on a re-run). Errors
come back as one line: a refused token, missing permissions, an unreachable URL.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from rtdp_dagster.grafana import datasource

# Fields Grafana adds or bumps on save; they do not make a dashboard different.
_VOLATILE_DASHBOARD_KEYS = ("id", "version")


class PublishError(Exception):
    pass


@dataclass(frozen=True)
class Action:
    kind: str  # datasource, folder, dashboard
    uid: str
    outcome: str  # created, updated, unchanged


def _missing(call) -> Any | None:
    """The object, or None when Grafana answers 404."""
    try:
        return call()
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _publish_datasource(api: GrafanaApi, router_url: str) -> Action:
    wanted = datasource.api_payload(router_url)
    existing = _missing(lambda: api.datasource.get_datasource_by_uid(datasource.UID))
    if existing is None:
        api.datasource.create_datasource(wanted)
        return Action("datasource", datasource.UID, "created")
    if all(existing.get(key) == value for key, value in wanted.items() if key != "jsonData") and all(
        (existing.get("jsonData") or {}).get(key) == value for key, value in wanted["jsonData"].items()
    ):
        return Action("datasource", datasource.UID, "unchanged")
    api.datasource.update_datasource_by_uid(datasource.UID, wanted)
    return Action("datasource", datasource.UID, "updated")


def _publish_folder(api: GrafanaApi) -> Action:
    existing = _missing(lambda: api.folder.get_folder(datasource.FOLDER_UID))
    if existing is None:
        api.folder.create_folder(datasource.FOLDER_TITLE, uid=datasource.FOLDER_UID)
        return Action("folder", datasource.FOLDER_UID, "created")
    if existing.get("title") == datasource.FOLDER_TITLE:
        return Action("folder", datasource.FOLDER_UID, "unchanged")
    api.folder.update_folder(datasource.FOLDER_UID, title=datasource.FOLDER_TITLE, overwrite=True)
    return Action("folder", datasource.FOLDER_UID, "updated")


def _comparable(model: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in model.items() if key not in _VOLATILE_DASHBOARD_KEYS}


def _publish_dashboard(api: GrafanaApi, model: Mapping[str, Any]) -> Action:
    uid = model["uid"]
    existing = _missing(lambda: api.dashboard.get_dashboard(uid))
    if existing is not None:
        same_folder = (existing.get("meta") or {}).get("folderUid") == datasource.FOLDER_UID
        if same_folder and _comparable(existing.get("dashboard") or {}) == _comparable(model):
            return Action("dashboard", uid, "unchanged")
    dashboard = {**copy.deepcopy(dict(model)), "id": None}
    api.dashboard.update_dashboard(
        {
            "dashboard": dashboard,
            "folderUid": datasource.FOLDER_UID,
            "overwrite": True,
            "message": "rtdp grafana publish",
        }
    )
    return Action("dashboard", uid, "created" if existing is None else "updated")


def _one_line(url: str, exc: Exception) -> str:
    if isinstance(exc, GrafanaUnauthorizedError):
        return f"Grafana at {url} refused the token (401 Unauthorized): check --token or GRAFANA_TOKEN"
    if isinstance(exc, GrafanaClientError) and exc.status_code == 403:
        return (
            f"Grafana at {url} denied access (403 Forbidden): the token needs the Editor role (Admin for data sources)"
        )
    if isinstance(exc, niquests.exceptions.ConnectionError):
        text = str(exc)
        reason = "connection refused" if "refused" in text.lower() else text.splitlines()[0][:200]
        return f"cannot reach Grafana at {url}: {reason}"
    if isinstance(exc, niquests.exceptions.Timeout | niquests.exceptions.RequestException):
        return f"cannot reach Grafana at {url}: {str(exc).splitlines()[0][:200]}"
    if isinstance(exc, GrafanaException):
        return f"Grafana at {url} answered an error: {str(exc.message).splitlines()[0][:300]}"
    return f"Grafana at {url}: {exc}"


def publish(
    url: str, token: str | None, router_url: str, dashboards: Mapping[str, Mapping[str, Any]], timeout_s: float = 10.0
) -> list[Action]:
    """Data source, folder, then every dashboard; raises PublishError with one line on failure."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PublishError(f"not a Grafana URL: {url!r} (expected http(s)://host[:port][/path])")
    if not token and not parsed.password:
        raise PublishError("no Grafana credentials: pass --token or set GRAFANA_TOKEN")
    api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout_s)
    shown_url = parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")).geturl()
    try:
        actions = [_publish_datasource(api, router_url), _publish_folder(api)]
        actions += [_publish_dashboard(api, model) for model in dashboards.values()]
    except (GrafanaException, niquests.exceptions.RequestException) as exc:
        raise PublishError(_one_line(shown_url, exc)) from None
    return actions
