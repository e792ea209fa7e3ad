"""The local Dagster instance folder (DAGSTER_HOME) with its dagster.yaml."""

from __future__ import annotations

from pathlib import Path

from rtdp_dagster.config import Settings

# Two cores: at most two concurrent runs, queued beyond that; no telemetry leaves the machine, and
# no sign-up prompt covers the UI (screenshots, first visit). Run monitoring fails runs whose
# process died (a killed machine must not leave runs "started" forever, holding the two slots).
_INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  max_runtime_seconds: 7200
"""


def ensure_dagster_home(settings: Settings) -> Path:
    home = Path(settings.dagster.home)
    home.mkdir(parents=True, exist_ok=True)
    instance = home / "dagster.yaml"
    if not instance.exists():
        instance.write_text(_INSTANCE_YAML)
    return home
