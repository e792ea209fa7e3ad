"""One module per dashboard; each exposes UID, FILE_NAME and ``build()`` returning the SDK builder."""

from __future__ import annotations

from types import ModuleType

from rtdp_dagster.grafana.dashboards import fleet_overview, host_drilldown, long_range, platform_operations

DASHBOARDS: tuple[ModuleType, ...] = (fleet_overview, host_drilldown, platform_operations, long_range)
