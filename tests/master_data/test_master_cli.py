"""`rtdp master`: help for every action; invalid files fail with one line before any Spark session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rtdp_dagster.cli import build_parser, main

MASTER_DIR = Path(__file__).resolve().parents[2] / "master_data"


@pytest.mark.parametrize("command", [["master"], ["master", "load"], ["master", "validate"]], ids=" ".join)
def test_every_master_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: rtdp {' '.join(command)}" in capsys.readouterr().out


def test_validate_prints_a_line_per_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["master", "validate", "--dir", str(MASTER_DIR)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["master v0001", "master v0002"]
    assert "217 hosts" in lines[0]


@pytest.mark.parametrize("action", ["validate", "load"])
def test_invalid_files_fail_with_one_line(action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "master_data"
    shutil.copytree(MASTER_DIR, broken, ignore=shutil.ignore_patterns("*.py"))
    (broken / "v0002" / "sites.yaml").unlink()
    # No stack runs for this test: `load` must fail on the files before it connects to Spark.
    assert main(["master", action, "--dir", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("rtdp: invalid master data, 1 problem: ")
    assert f"{broken / 'v0002'}: missing sites.yaml or sites.csv" in captured.err
