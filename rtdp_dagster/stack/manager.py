"""`rtdp stack up | down | status`: start, stop and inspect the local services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.process import ManagedProcess, memory_mib
from rtdp_dagster.stack.services import all_specs
from rtdp_dagster.stack.topics import ensure_topics
from rtdp_dagster.tables import format_table


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    ports: list[int]
    healthy: bool
    log_file: str
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def processes(settings: Settings, include_disabled: bool = False) -> list[ManagedProcess]:
    return [ManagedProcess(spec, settings.run_dir) for spec in all_specs(settings, include_disabled)]


def up(settings: Settings, log: Callable[[str], None] = print) -> list[ServiceStatus]:
    """Start every enabled service that is not running, wait for health, create topics.

    Idempotent: running services are left alone. If one service fails to start, the ones this
    call started are stopped again so a half-started stack is not left behind.
    """
    started: list[ManagedProcess] = []
    try:
        for process in processes(settings):
            if process.pid() is not None:
                log(f"{process.spec.name}: already running (pid {process.pid()})")
                continue
            pid = process.start()
            started.append(process)
            log(f"{process.spec.name}: started (pid {pid}), log {process.log_file}")
        # Start everything first, then wait: the JVMs warm up in parallel.
        for process in processes(settings):
            process.wait_healthy(settings.stack.start_timeout_s)
            log(f"{process.spec.name}: healthy")
        if settings.stack.kafka.enabled:
            created = ensure_topics(settings.kafka)
            log(f"kafka topics: {len(settings.kafka.topics)} configured, {len(created)} created")
    except (StackError, KeyboardInterrupt):
        for process in reversed(started):
            process.stop(settings.stack.stop_timeout_s)
        raise
    return status(settings)


def down(settings: Settings, log: Callable[[str], None] = print) -> list[str]:
    """Stop the services this stack started (by pid file), newest first."""
    stopped = []
    # Disabled ones too: a service started under another configuration (e.g. `rtdp demo`) is ours.
    for process in reversed(processes(settings, include_disabled=True)):
        if process.stop(settings.stack.stop_timeout_s):
            stopped.append(process.spec.name)
            log(f"{process.spec.name}: stopped")
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    result = []
    enabled = {process.spec.name for process in processes(settings)}
    for process in processes(settings, include_disabled=True):
        pid = process.pid()
        if process.spec.name not in enabled and pid is None:
            continue  # not part of this configuration's stack, and not running
        rss, peak = memory_mib(pid) if pid is not None else (0.0, 0.0)
        result.append(
            ServiceStatus(
                name=process.spec.name,
                pid=pid,
                ports=process.spec.ports,
                healthy=pid is not None and process.healthy(),
                log_file=str(process.log_file),
                rss_mib=round(rss, 1),
                peak_rss_mib=round(peak, 1),
            )
        )
    return result


def format_status(rows: list[ServiceStatus]) -> str:
    header = ("SERVICE", "STATE", "PID", "PORTS", "RSS MiB", "PEAK MiB", "LOG")
    lines: list[tuple[object, ...]] = [
        (row.name, row.state, row.pid or "-", ",".join(map(str, row.ports)),
         f"{row.rss_mib:.0f}", f"{row.peak_rss_mib:.0f}", row.log_file)
        for row in rows
    ]  # fmt: skip
    lines.append(
        ("total", "", "", "", f"{sum(r.rss_mib for r in rows):.0f}", f"{sum(r.peak_rss_mib for r in rows):.0f}", "")
    )
    return format_table(header, lines)
