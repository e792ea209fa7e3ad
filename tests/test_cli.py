import subprocess
import sys

import pytest

from rtdp_dagster.cli import build_parser, main

COMMANDS = [
    [],
    ["setup"],
    ["stack"],
    ["stack", "up"],
    ["stack", "down"],
    ["stack", "status"],
    ["config"],
    ["config", "show"],
    ["smoke"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "rtdp")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rtdp" in capsys.readouterr().out


def test_config_error_is_one_line_without_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rtdp_dagster.cli", "config", "show"],
        env={"RTDP_STACK__KAFKA__HEAP": "[1, 2]", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "stack.kafka.heap" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_prints_the_effective_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    assert '"bootstrap_servers"' in capsys.readouterr().out
