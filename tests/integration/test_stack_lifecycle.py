"""Stack lifecycle: idempotent up, clean down, one-line errors for expected failures."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rtdp_dagster.config import Settings, load_settings
from rtdp_dagster.stack import manager
from rtdp_dagster.stack.errors import StackError
from rtdp_dagster.stack.process import _start_ticks
from tests.conftest import free_ports

# Each test starts (or fails to start) services of its own, without the session stack.
pytestmark = pytest.mark.stack


def _vm_only_env(run_dir: Path, **extra: str) -> dict[str, str]:
    http, telnet, put_http = free_ports(3)
    return {
        "RTDP_RUN_DIR": str(run_dir),
        "RTDP_STACK__KAFKA__ENABLED": "false",
        "RTDP_STACK__SPARK_CONNECT__ENABLED": "false",
        "RTDP_STACK__VICTORIA_METRICS__HISTORY__ENABLED": "false",
        "RTDP_STACK__VICTORIA_METRICS__REALTIME__HTTP_PORT": str(http),
        "RTDP_STACK__VICTORIA_METRICS__REALTIME__OPENTSDB_PORT": str(telnet),
        "RTDP_STACK__VICTORIA_METRICS__REALTIME__OPENTSDB_HTTP_PORT": str(put_http),
        **extra,
    }


def _rtdp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtdp_dagster.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_twice_is_harmless_and_down_leaves_nothing(tmp_path: Path) -> None:
    settings = load_settings(environ=_vm_only_env(tmp_path))
    first = manager.up(settings, log=lambda _: None)
    try:
        assert [(row.name, row.state) for row in first] == [("vm-realtime", "healthy")]
        second = manager.up(settings, log=lambda _: None)
        assert second[0].pid == first[0].pid
    finally:
        stopped = manager.down(settings, log=lambda _: None)
    assert stopped == ["vm-realtime"]
    pid = first[0].pid
    assert pid is not None and _start_ticks(pid) is None, "process still alive after down"
    assert manager.status(settings)[0].state == "stopped"
    assert manager.down(settings, log=lambda _: None) == []


def test_session_stack_up_again_keeps_the_same_processes(stack: Settings) -> None:
    before = {row.name: row.pid for row in manager.status(stack)}
    after = {row.name: row.pid for row in manager.up(stack, log=lambda _: None)}
    assert before == after
    assert set(after) == {"kafka", "vm-realtime", "vm-history", "spark-connect"}


def test_port_in_use_gives_one_line_error(tmp_path: Path) -> None:
    env = _vm_only_env(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["RTDP_STACK__VICTORIA_METRICS__REALTIME__HTTP_PORT"])))
        squatter.listen()
        result = _rtdp(env, "stack", "up")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("rtdp: vm-realtime: port 127.0.0.1:")
    assert "already in use" in message and "vm-realtime.log" in message


def test_service_dying_at_start_names_service_and_log(tmp_path: Path) -> None:
    env = _vm_only_env(tmp_path, RTDP_STACK__VICTORIA_METRICS__BINARY="false")
    result = _rtdp(env, "stack", "up")
    assert result.returncode == 1
    assert result.stderr.strip() == f"rtdp: vm-realtime: exited during start-up (log: {tmp_path}/logs/vm-realtime.log)"


def test_missing_java_is_reported(tmp_path: Path) -> None:
    broker, controller = free_ports(2)
    env = _vm_only_env(
        tmp_path,
        RTDP_STACK__KAFKA__ENABLED="true",
        RTDP_STACK__JAVA="no-such-java",
        RTDP_STACK__KAFKA__PORT=str(broker),
        RTDP_STACK__KAFKA__CONTROLLER_PORT=str(controller),
        RTDP_STACK__VICTORIA_METRICS__REALTIME__ENABLED="false",
    )
    with pytest.raises(StackError, match=r"^kafka: java not found"):
        manager.up(load_settings(environ=env), log=lambda _: None)
