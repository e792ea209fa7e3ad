"""The demo's replay window: its history starts after the files' last real outage."""

from pathlib import Path

from rtdp_dagster.demo.workload import outage_free_s


def _write(path: Path, minutes: list[int]) -> None:
    rows = [f"2014-04-10 {m // 60:02d}:{m % 60:02d}:00,{m}.0" for m in minutes]
    path.write_text("timestamp,value\n" + "\n".join(rows) + "\n")


def test_the_history_reaches_back_to_the_middle_of_the_latest_gap_of_any_file(tmp_path: Path) -> None:
    every_5 = list(range(0, 600, 5))
    _write(tmp_path / "clean.csv", every_5)
    assert outage_free_s(tmp_path, "*.csv", gap_factor=3.0) is None
    # Three readings missing (a step of four cadences) ends 100 minutes before the file's end.
    _write(tmp_path / "hole.csv", [m for m in every_5 if not 480 < m < 500])
    # Two missing readings (three cadences) are no gap, even later in another file.
    _write(tmp_path / "short.csv", [m for m in every_5 if not 550 < m < 565])
    assert outage_free_s(tmp_path, "*.csv", gap_factor=3.0) == (595 - 490) * 60
    assert outage_free_s(tmp_path, "c*.csv", gap_factor=3.0) is None
