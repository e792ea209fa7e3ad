"""A background service process owned by the stack: pid file, log file, health, stop.

The pid file records the process start time too, so a recycled pid is never mistaken for ours
and `down` only ever signals processes this stack started.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtdp_dagster.stack.errors import StackError


def _start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after its closing paren are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def memory_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MiB; zeros if it is gone."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


# A service starts with the stop signals at their defaults, whoever starts it. A background shell
# hands an ignored SIGINT down, Dagster's in-process runs then map SIGTERM onto that (ignored)
# handler, and a JVM started with a signal ignored keeps it so: `stack down` could then only kill.
_STOP_SIGNALS_AT_DEFAULT = ["env", "--default-signal=TERM,INT"]


def _executable(program: str, cwd: Path | None, search_path: str | None) -> bool:
    """Whether exec would find program: a path from the child's working folder, a name on its PATH."""
    if "/" in program:
        return os.access(Path(cwd or ".") / program, os.X_OK)
    return shutil.which(program, path=search_path) is not None


def run_as(user: str | None) -> dict[str, Any]:
    """subprocess keyword arguments that run a child as user, with that user's group only."""
    if user is None:
        return {}
    account = pwd.getpwnam(user)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


@dataclass
class ServiceSpec:
    name: str
    command: list[str]
    host: str
    ports: list[int]
    health: Callable[[], bool]
    # Why a running service is unhealthy, in a line for `stack status` (None: nothing to add).
    diagnose: Callable[[], str | None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Runs before the first start (e.g. formatting Kafka's storage); must be idempotent.
    prepare: Callable[[], None] | None = None
    # Services of the same stack that must be healthy before this one starts (a worker needs its master).
    depends_on: tuple[str, ...] = ()
    # Runs each time `up` finds the service healthy (e.g. creating databases); must be idempotent.
    # Returns a line for the log, or None.
    when_healthy: Callable[[], str | None] | None = None
    # How to ask for a clean stop: the signal, and whether the whole process group gets it (JVM
    # launchers and their children) or only the leader (a server that stops its own children).
    stop_signal: signal.Signals = signal.SIGTERM
    signal_group_on_stop: bool = True
    # The system user the process runs as (None: this one); only root can switch.
    user: str | None = None
    # Services of one group are asked to stop at the same time: the Kafka nodes, whose last node
    # would otherwise wait for a quorum that left before it.
    stop_group: str | None = None


class ManagedProcess:
    def __init__(self, spec: ServiceSpec, run_dir: Path) -> None:
        self.spec = spec
        self.pid_file = run_dir / "pids" / f"{spec.name}.pid"
        self.log_file = run_dir / "logs" / f"{spec.name}.log"

    def pid(self) -> int | None:
        """Our live process's pid; a stale pid file (dead or recycled pid) is removed."""
        try:
            record = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        pid, ticks = record.get("pid"), record.get("start_ticks")
        if isinstance(pid, int) and _start_ticks(pid) == ticks:
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def healthy(self) -> bool:
        try:
            return self.spec.health()
        except Exception:  # a health probe that errors means "not healthy yet"
            return False

    def diagnosis(self) -> str | None:
        if self.spec.diagnose is None:
            return None
        try:
            return self.spec.diagnose()
        except Exception as exc:  # a line for the operator, never a failing status
            return f"{type(exc).__name__}: {exc}"

    def _fail(self, cause: str) -> StackError:
        return StackError(f"{self.spec.name}: {cause} (log: {self.log_file})")

    def start(self) -> int:
        """Start the process unless ours is already running; returns its pid."""
        existing = self.pid()
        if existing is not None:
            return existing
        for port in self.spec.ports:
            if port_in_use(self.spec.host, port):
                raise self._fail(f"port {self.spec.host}:{port} is already in use by another process")
        if self.spec.prepare is not None:
            self.spec.prepare()
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- rtdp starting {self.spec.name}: {' '.join(self.spec.command)}\n".encode())
            log.flush()
            env = {**os.environ, **self.spec.env}
            if not _executable(self.spec.command[0], self.spec.cwd, env.get("PATH")):
                raise self._fail(f"executable not found: {self.spec.command[0]}")
            process = subprocess.Popen(
                [*_STOP_SIGNALS_AT_DEFAULT, *self.spec.command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.spec.cwd,
                env=env,
                start_new_session=True,  # survives the CLI; stopped as a process group
                **run_as(self.spec.user),
            )
        record = {"pid": process.pid, "start_ticks": _start_ticks(process.pid), "command": self.spec.command}
        self.pid_file.write_text(json.dumps(record))
        return process.pid

    def wait_healthy(self, timeout_s: float) -> None:
        def ready() -> bool:
            if self.pid() is None:
                raise self._fail("exited during start-up")
            return self.healthy()

        if not wait_until(ready, timeout_s, interval_s=0.25):
            raise self._fail(f"not healthy after {timeout_s:.0f}s")

    def stop(self, timeout_s: float) -> bool:
        """The stop signal (SIGTERM to the process group by default), SIGKILL to the group after
        timeout_s; True if something was stopped."""
        pid = self.request_stop()
        if pid is None:
            return False
        self.finish_stop(pid, timeout_s)
        return True

    def request_stop(self) -> int | None:
        """Send the stop signal without waiting; the pid it went to, or None if nothing runs."""
        pid = self.pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            if self.spec.signal_group_on_stop:
                os.killpg(pid, self.spec.stop_signal)
            else:
                os.kill(pid, self.spec.stop_signal)
        return pid

    def finish_stop(self, pid: int, timeout_s: float) -> bool:
        """Wait up to timeout_s for the process asked to stop, then SIGKILL its group; True if the stop
        signal alone ended the process."""
        stopped = wait_until(lambda: _start_ticks(pid) is None, timeout_s)
        # Also after a clean exit of the leader: a child it left behind must not outlive the stack.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if not stopped:
            wait_until(lambda: _start_ticks(pid) is None, 10)
        # SIGKILL is delivered, not yet done: a loaded machine takes a moment to end the children.
        wait_until(lambda: not _group_alive(pid), 10)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def kill(self) -> bool:
        """SIGKILL the whole process group at once, as a machine failure would; True if it was running."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not _group_alive(pid), 10)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True


def unreachable_by(pid: int, signum: int) -> str | None:
    """Why the signal cannot end the process: "ignored" (a disposition inherited from whoever started
    it, which a JVM keeps) or "blocked" (in every thread); None if it can reach it, or it is gone."""
    bit = 1 << (signum - 1)
    masks: list[dict[str, int]] = []
    for status in [Path(f"/proc/{pid}/status"), *Path(f"/proc/{pid}/task").glob("*/status")]:
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        masks.append({key: int(fields[key], 16) for key in ("SigIgn", "SigBlk") if key in fields})
    if not masks:
        return None
    if masks[0].get("SigIgn", 0) & bit:
        return "ignored"
    threads = masks[1:] or masks
    return "blocked" if all(mask.get("SigBlk", 0) & bit for mask in threads) else None


def _group_alive(group: int) -> bool:
    """Whether any process of the group still lives (zombies have exited)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


def _reap(pid: int) -> None:
    # When the stack was started by this very process (tests), collect the exit status.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
