"""`rtdp stack up | down | status`: start, stop and inspect the local services."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rtdp_dagster.config import Settings
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.process import ManagedProcess, memory_mib, unreachable_by
from rtdp_dagster.stack.services import all_specs
from rtdp_dagster.stack.topics import ensure_topics
from rtdp_dagster.text_table import format_table


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    ports: list[int]
    healthy: bool
    log_file: str
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    # Why a running service is unhealthy, when its probe can tell (`ingest`: collection stalled).
    detail: str | None = None

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def processes(settings: Settings, include_disabled: bool = False) -> list[ManagedProcess]:
    return [ManagedProcess(spec, settings.run_dir) for spec in all_specs(settings, include_disabled)]


def process_named(settings: Settings, name: str) -> ManagedProcess:
    """One service of the stack by name (`kafka-2`, `spark-worker-1`, ...): to stop, kill or start
    a single node, as a fault drill does."""
    for process in processes(settings, include_disabled=True):
        if process.spec.name == name:
            return process
    known = ", ".join(process.spec.name for process in processes(settings, include_disabled=True))
    raise StackError(f"{name}: no such service (known: {known})")


def up(settings: Settings, log: Callable[[str], None] = print) -> list[ServiceStatus]:
    """Start every enabled service that is not running, wait for health, create topics.

    Idempotent: running services are left alone. If one service fails to start, the ones this
    call started are stopped again so a half-started stack is not left behind.
    """
    started: list[ManagedProcess] = []
    ready: set[str] = set()
    stack = processes(settings)
    by_name = {process.spec.name: process for process in stack}

    def wait_ready(process: ManagedProcess) -> None:
        if process.spec.name in ready:
            return
        process.wait_healthy(settings.stack.start_timeout_s)
        log(f"{process.spec.name}: healthy")
        if process.spec.when_healthy is not None:
            try:
                line = process.spec.when_healthy()
            except StackError:
                raise
            except Exception as exc:  # a driver's error (e.g. psycopg2) as the one-line stack error
                raise StackError(f"{process.spec.name}: {exc} (log: {process.log_file})") from exc
            if line:
                log(line)
        ready.add(process.spec.name)

    try:
        for process in stack:
            # A service waits only for what it cannot start without (a worker for its master).
            for dependency in process.spec.depends_on:
                if dependency in by_name:
                    wait_ready(by_name[dependency])
            if process.pid() is not None:
                log(f"{process.spec.name}: already running (pid {process.pid()})")
                continue
            pid = process.start()
            started.append(process)
            log(f"{process.spec.name}: started (pid {pid}), log {process.log_file}")
        # Start everything first, then wait: the JVMs warm up in parallel.
        for process in stack:
            wait_ready(process)
        if settings.stack.kafka.enabled:
            created = ensure_topics(settings.kafka)
            log(f"kafka topics: {len(settings.kafka.topics)} configured, {len(created)} created")
    except (StackError, KeyboardInterrupt):
        stop_in_order(list(reversed(started)), settings.stack.stop_timeout_s, log=lambda _: None)
        raise
    return status(settings)


def down(settings: Settings, log: Callable[[str], None] = print) -> list[str]:
    """Stop the services this stack started (by pid file), newest first; the services of a stop
    group (the Kafka nodes) all at once."""
    # Disabled ones too: a service started under another configuration (e.g. `rtdp demo`) is ours.
    return stop_in_order(list(reversed(processes(settings, include_disabled=True))), settings.stack.stop_timeout_s, log)


def stop_in_order(ordered: list[ManagedProcess], timeout_s: float, log: Callable[[str], None]) -> list[str]:
    """Stop in this order, each stop group at once; the names of those that were running."""
    stopped = []
    while ordered:
        group = ordered[0].spec.stop_group
        batch = [ordered.pop(0)]
        while group is not None and ordered and ordered[0].spec.stop_group == group:
            batch.append(ordered.pop(0))
        asked_at = time.monotonic()
        asked = [(process, process.request_stop()) for process in batch]
        for process, pid in asked:
            if pid is None:
                continue
            # Why a stop signal cannot work, read before the process is gone: the operator's next step.
            unreachable = unreachable_by(pid, process.spec.stop_signal)
            # One deadline for the whole group: its members were asked at once.
            clean = process.finish_stop(pid, max(0.0, asked_at + timeout_s - time.monotonic()))
            took = f"{time.monotonic() - asked_at:.1f} s"  # timed: which service holds a slow `down` up
            stopped.append(process.spec.name)
            if clean:
                log(f"{process.spec.name}: stopped in {took}")
            else:
                why = f" ({process.spec.stop_signal.name} {unreachable} in the process)" if unreachable else ""
                log(f"{process.spec.name}: killed after {took}{why}")
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    result = []
    enabled = {process.spec.name for process in processes(settings)}
    for process in processes(settings, include_disabled=True):
        pid = process.pid()
        if process.spec.name not in enabled and pid is None:
            continue  # not part of this configuration's stack, and not running
        rss, peak = memory_mib(pid) if pid is not None else (0.0, 0.0)
        healthy = pid is not None and process.healthy()
        result.append(
            ServiceStatus(
                name=process.spec.name,
                pid=pid,
                ports=process.spec.ports,
                healthy=healthy,
                log_file=str(process.log_file),
                rss_mib=round(rss, 1),
                peak_rss_mib=round(peak, 1),
                detail=None if healthy or pid is None else process.diagnosis(),
            )
        )
    return result


def format_status(rows: list[ServiceStatus]) -> str:
    header = ("SERVICE", "STATE", "PID", "PORTS", "RSS MiB", "PEAK MiB", "LOG")
    lines: list[tuple[object, ...]] = [
        (
            row.name,
            row.state,
            row.pid or "-",
            ",".join(map(str, row.ports)),
            f"{row.rss_mib:.0f}",
            f"{row.peak_rss_mib:.0f}",
            row.log_file,
        )
        for row in rows
    ]
    lines.append(
        ("total", "", "", "", f"{sum(r.rss_mib for r in rows):.0f}", f"{sum(r.peak_rss_mib for r in rows):.0f}", "")
    )
    notes = [f"{row.name}: {row.detail}" for row in rows if row.detail]
    return "\n".join([format_table(header, lines), *notes])
