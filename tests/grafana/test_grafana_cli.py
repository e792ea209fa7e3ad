"""`rtdp grafana ...`: help, the drift check, router URL resolution, one-line errors."""

from __future__ import annotations

import socket

import pytest

from rtdp_dagster.cli import build_parser, main
from rtdp_dagster.config import load_settings
from rtdp_dagster.grafana.router_url import router_url


@pytest.mark.parametrize("command", [["grafana"], ["grafana", "build"], ["grafana", "publish"], ["grafana", "verify"]])
def test_every_grafana_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rtdp grafana" in capsys.readouterr().out


def test_build_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grafana", "build", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_router_url_precedence() -> None:
    settings = load_settings(environ={"RTDP_SERVE__PORT": "4999"})
    assert router_url(settings) == "http://127.0.0.1:4999"
    settings = load_settings(environ={"RTDP_GRAFANA__ROUTER_URL": "http://router:4246/"})
    assert router_url(settings) == "http://router:4246"
    assert router_url(settings, "http://other:1") == "http://other:1"


def test_unreachable_router_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    assert main(["grafana", "verify", "--router-url", f"http://127.0.0.1:{port}"]) == 1
    assert capsys.readouterr().err == f"rtdp: cannot reach the router at http://127.0.0.1:{port}: connection refused\n"
