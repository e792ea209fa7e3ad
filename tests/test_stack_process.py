"""Stopping and killing a stack process leaves nothing of its process group (with `sleep`, no services)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from rtdp_dagster.stack.process import ManagedProcess, ServiceSpec, wait_until

# A leader with a child in its process group, as a launcher script with its JVM.
_LEADER_AND_CHILD = ["sh", "-c", "sleep 30 & exec sleep 31"]


def _group_members(group: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat.parent.name))
    return members


def _process(
    tmp_path: Path, stop_signal: signal.Signals = signal.SIGTERM, signal_group_on_stop: bool = True
) -> ManagedProcess:
    service = ServiceSpec(
        name="sleeper",
        command=_LEADER_AND_CHILD,
        host="127.0.0.1",
        ports=[],
        health=lambda: True,
        stop_signal=stop_signal,
        signal_group_on_stop=signal_group_on_stop,
    )
    return ManagedProcess(service, tmp_path)


def test_leader_only_stop_signal_still_leaves_no_child(tmp_path: Path) -> None:
    process = _process(tmp_path, stop_signal=signal.SIGINT, signal_group_on_stop=False)
    pid = process.start()
    assert wait_until(lambda: len(_group_members(pid)) == 2, 5)
    # SIGINT ends the leader (stop() is true when something was running); the child is
    # killed with the group.
    assert process.stop(timeout_s=5)
    assert _group_members(pid) == [] and process.pid() is None


def test_kill_takes_the_whole_group_at_once(tmp_path: Path) -> None:
    process = _process(tmp_path)
    pid = process.start()
    assert wait_until(lambda: len(_group_members(pid)) == 2, 5)
    assert process.kill()
    assert _group_members(pid) == [] and not process.pid_file.exists()
    assert not process.kill()  # nothing left to kill


def test_ingest_alive_but_not_collecting_is_unhealthy(tmp_path: Path) -> None:
    """`stack status` shows `rtdp ingest` unhealthy, with the reason, when a source logged no window for too long."""
    import time

    from rtdp_dagster.config import load_settings
    from rtdp_dagster.heartbeat import write_heartbeat
    from rtdp_dagster.stack.services import platform_service_spec

    heartbeat = tmp_path / "ingest" / "heartbeat.json"
    spec = platform_service_spec(load_settings(environ={}), "ingest", heartbeat, 60.0, progressing=True)
    process = ManagedProcess(spec, tmp_path)
    now = time.time()

    def beat(last_window_at: float, at: float = now) -> None:
        source = {"source": "s1", "last_window_at": last_window_at, "stalled_after_s": 20.0}
        write_heartbeat(heartbeat, {"at": at, "sources": [source]})

    assert not process.healthy() and process.diagnosis() == "no heartbeat"
    beat(now - 5)
    assert process.healthy() and process.diagnosis() is None
    beat(now - 42)
    assert not process.healthy()
    assert process.diagnosis() == "collection stalled: s1: no window logged for 42s"
    beat(now - 5, at=now - 61)
    assert process.diagnosis() == "heartbeat 61s old"
    # Without `progressing` (the stream) only the heartbeat's age counts.
    stream = ManagedProcess(platform_service_spec(load_settings(environ={}), "stream", heartbeat, 60.0), tmp_path)
    beat(now - 42)
    assert stream.healthy()


def _ignoring_term(tmp_path: Path, name: str) -> ManagedProcess:
    # Started with SIGTERM ignored, as a JVM launched by a process that ignores it keeps it.
    service = ServiceSpec(
        name=name,
        command=["sh", "-c", "trap '' TERM; exec sleep 60"],
        host="127.0.0.1",
        ports=[],
        health=lambda: True,
        stop_group="sleepers",
    )
    return ManagedProcess(service, tmp_path / name)


def test_a_stop_group_that_ignores_its_signal_is_killed_after_one_timeout_and_says_why(tmp_path: Path) -> None:
    import time

    from rtdp_dagster.stack.manager import stop_in_order
    from rtdp_dagster.stack.process import unreachable_by

    group = [_ignoring_term(tmp_path, name) for name in ("first", "second", "third")]
    pids = [process.start() for process in group]
    assert wait_until(lambda: all(unreachable_by(pid, signal.SIGTERM) == "ignored" for pid in pids), 5)
    lines: list[str] = []
    started = time.monotonic()
    assert stop_in_order(group, timeout_s=3.0, log=lines.append) == ["first", "second", "third"]
    # The group was asked at once, so it shares one deadline (not one per member, one after another).
    assert time.monotonic() - started < 3.0 + 3.0  # one after another: 9 s
    assert all(line.endswith("(SIGTERM ignored in the process)") and "killed after" in line for line in lines), lines
    assert all(_group_members(pid) == [] for pid in pids)


def test_a_process_that_takes_its_signal_is_not_called_unreachable(tmp_path: Path) -> None:
    from rtdp_dagster.stack.process import unreachable_by

    process = _process(tmp_path)
    pid = process.start()
    assert wait_until(lambda: len(_group_members(pid)) == 2, 5)
    assert unreachable_by(pid, signal.SIGTERM) is None
    assert process.stop(timeout_s=5)
    assert unreachable_by(pid, signal.SIGTERM) is None  # gone


def test_a_service_started_by_a_process_that_ignores_sigterm_still_stops_on_it(tmp_path: Path) -> None:
    from rtdp_dagster.stack.process import unreachable_by

    # As in a pytest or CLI started from a background shell after a Dagster in-process run.
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        process = _process(tmp_path)
        pid = process.start()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert wait_until(lambda: len(_group_members(pid)) == 2, 5)
    assert unreachable_by(pid, signal.SIGTERM) is None
    assert process.stop(timeout_s=5)  # reachable above: the stop signal, not only SIGKILL, can end it


def test_a_missing_executable_is_named_and_a_path_is_found_from_the_services_folder(tmp_path: Path) -> None:
    from rtdp_dagster.stack.errors import StackError

    def spec(command: list[str], cwd: Path | None = None) -> ServiceSpec:
        return ServiceSpec(name="sleeper", command=command, host="127.0.0.1", ports=[], health=lambda: True, cwd=cwd)

    with pytest.raises(StackError, match="executable not found: no-such-program"):
        ManagedProcess(spec(["no-such-program"]), tmp_path / "missing").start()
    # A relative path is the service's own: exec resolves it from its working folder.
    folder = tmp_path / "service"
    (folder / "bin").mkdir(parents=True)
    script = folder / "bin" / "sleeper"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    process = ManagedProcess(spec(["bin/sleeper"], cwd=folder), tmp_path / "found")
    process.start()
    assert process.stop(timeout_s=5)
