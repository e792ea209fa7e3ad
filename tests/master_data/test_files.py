"""The committed master data validates and covers the fleet; each kind of defect is named by file, row and field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from rtdp_dagster.collection.sources.csv_replay import nab_series
from rtdp_dagster.master_data import MasterDataError, load_master_data

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MASTER_DIR = PROJECT_ROOT / "master_data"
NAB_DIR = PROJECT_ROOT.parent / "shared" / "data" / "nab" / "realAWSCloudwatch"
NAB_FILE_COUNT = 17


def test_committed_versions_validate_in_order() -> None:
    data = load_master_data(MASTER_DIR)
    assert [item.version for item in data.versions] == [1, 2]
    assert data.versions[0].valid_from_ms < data.versions[1].valid_from_ms
    assert data.valid_to_ms(1) == data.versions[1].valid_from_ms
    assert data.valid_to_ms(2) is None


def test_synthetic_fleet_is_covered() -> None:
    for item in load_master_data(MASTER_DIR).versions:
        hosts = {entry.host: entry for entry in item.hosts()}
        expected = {f"site{site:02d}-host{host:04d}" for site in range(1, 5) for host in range(1, 51)}
        assert expected <= hosts.keys()
        assert {"app01", "app02", "app03"} <= {app.app for app in item.applications}
        assert hosts["site03-host0021"].app == "app02" and hosts["site03-host0021"].region == "us-east"


def test_every_nab_instance_is_a_host_in_aws_us_east_1() -> None:
    files = sorted(path.name for path in NAB_DIR.glob("*.csv")) if NAB_DIR.is_dir() else []
    if not files:
        pytest.skip(f"NAB data not present at {NAB_DIR}")
    assert len(files) == NAB_FILE_COUNT
    hosts = {entry.host: entry for entry in load_master_data(MASTER_DIR).latest.hosts()}
    for name in files:
        _, tags = nab_series(name)
        # A file without an instance id (grok_asg_anomaly) is its own host, named by the file.
        entry = hosts[tags.get("instance", Path(name).stem)]
        assert (entry.site, entry.region) == ("aws-us-east-1", "us-east-1"), name


def test_version_2_moves_exactly_the_documented_hosts() -> None:
    data = load_master_data(MASTER_DIR)
    before = {entry.host: entry for entry in data.get(1).hosts()}
    after = {entry.host: entry for entry in data.get(2).hosts()}
    assert before.keys() == after.keys()
    changed = {host for host in before if before[host] != after[host]}
    assert changed == {
        "site01-host0049",
        "site01-host0050",
        "site02-host0001",
        "site02-host0002",
        "site02-host0003",
        "ac20cd",
    }
    assert (before["site01-host0049"].site, after["site01-host0049"].site) == ("site01", "site03")
    assert (before["site02-host0001"].app, after["site02-host0001"].app) == ("app01", "app02")
    assert (before["ac20cd"].app, after["ac20cd"].app) == ("app04", "app01")


# --- defects: a copy of the committed data with one change each --------------------------------


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "master_data"
    shutil.copytree(MASTER_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def replace_line(path: Path, old: str, new: str) -> None:
    lines = path.read_text().splitlines()
    assert lines.count(old) == 1, f"{old!r} must be on exactly one line of {path}"
    lines[lines.index(old)] = new
    path.write_text("\n".join(lines) + "\n")


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1) if line == text)


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(MasterDataError) as error:
        load_master_data(directory)
    assert "\n" not in str(error.value)
    return [str(problem) for problem in error.value.problems]


def defect_cases() -> list[tuple[str, Callable[[Path], None], str]]:
    """(id, change to the copied tree, the problem expected: file: row (line): field: message)."""

    def servers(root: Path) -> Path:
        return root / "v0001" / "servers.csv"

    def topology(root: Path) -> Path:
        return root / "v0001" / "topology.csv"

    return [
        (
            "unknown site",
            lambda r: replace_line(
                servers(r),
                "site01-host0003,site01,web,prod,ubuntu-22.04,8",
                "site01-host0003,site09,web,prod,ubuntu-22.04,8",
            ),
            "v0001/servers.csv: row 3 (line 4): site: unknown site 'site09': not in",
        ),
        (
            "unknown app in topology",
            lambda r: replace_line(topology(r), "app01,site01-host0001,true", "app99,site01-host0001,true"),
            "v0001/topology.csv: row 1 (line 2): app: unknown app 'app99': not in",
        ),
        (
            "unknown host in topology",
            lambda r: append(topology(r), "app03,ghost-host,false\n"),
            "v0001/topology.csv: row 234 (line 235): host: unknown host 'ghost-host': not in",
        ),
        (
            "duplicate host",
            lambda r: append(servers(r), "site01-host0001,site02,web,prod,,\n"),
            "v0001/servers.csv: row 218 (line 219): host: duplicate host 'site01-host0001' (first at row 1)",
        ),
        (
            "no primary app",
            lambda r: replace_line(topology(r), "app01,site01-host0002,true", "app01,site01-host0002,false"),
            "v0001/servers.csv: row 2 (line 3): host: no primary app",
        ),
        (
            "two primary apps",
            lambda r: append(topology(r), "app02,site01-host0001,true\n"),
            "v0001/topology.csv: row 234 (line 235): primary: host 'site01-host0001' already has primary app 'app01' "
            "(row 1)",
        ),
        (
            "bad value",
            lambda r: replace_line(
                servers(r),
                "site01-host0001,site01,web,prod,ubuntu-22.04,8",
                "site01-host0001,site01,web,prod,ubuntu-22.04,eight",
            ),
            "v0001/servers.csv: row 1 (line 2): cpu_cores: Input should be a valid integer",
        ),
        (
            "unknown column",
            lambda r: replace_line(
                servers(r), "host,site,role,environment,os,cpu_cores", "host,site,role,environment,os,cpu_cores,rack"
            ),
            "v0001/servers.csv: line 1: rack: unknown column",
        ),
        ("missing file", lambda r: topology(r).unlink(), "v0001: missing topology.yaml or topology.csv"),
    ]


@pytest.mark.parametrize(
    ("change", "expected"), [case[1:] for case in defect_cases()], ids=[case[0] for case in defect_cases()]
)
def test_defect_is_reported_with_file_row_and_field(copy: Path, change: Callable[[Path], None], expected: str) -> None:
    change(copy)
    problems = problems_of(copy)
    assert any(expected in problem for problem in problems), problems
    # One defect, one problem: integrity checks do not pile follow-up errors onto it.
    assert len(problems) == 1, problems


def test_duplicate_site_in_yaml_names_its_line(copy: Path) -> None:
    sites = copy / "v0002" / "sites.yaml"
    first_new_line = len(sites.read_text().splitlines()) + 1
    append(sites, "- site: site01\n  name: Frankfurt DC2\n  region: eu-central\n  provider: onprem\n")
    assert problems_of(copy) == [
        f"{sites}: row 6 (line {first_new_line}): site: duplicate site 'site01' (first at row 1)"
    ]


def test_unknown_yaml_field_points_at_its_line(copy: Path) -> None:
    applications = copy / "v0001" / "applications.yaml"
    replace_line(applications, "- app: app02", "- app: app02\n  colour: blue")
    assert problems_of(copy) == [
        f"{applications}: row 2 (line {line_of(applications, '  colour: blue')}): colour: unknown field"
    ]


def test_manifest_version_must_match_its_folder(copy: Path) -> None:
    manifest = copy / "v0002" / "manifest.yaml"
    replace_line(manifest, "version: 2", "version: 3")
    assert problems_of(copy) == [
        f"{manifest}: line {line_of(manifest, 'version: 3')}: version: is 3 but the folder is v0002"
    ]


def test_valid_from_must_increase_with_the_version(copy: Path) -> None:
    manifest = copy / "v0002" / "manifest.yaml"
    replace_line(manifest, 'valid_from: "2026-11-16T00:00:00Z"', 'valid_from: "2012-06-01T00:00:00Z"')
    problems = problems_of(copy)
    assert len(problems) == 1
    assert problems[0].startswith(f"{manifest}: valid_from: 2012-06-01T00:00:00+00:00 is not after v0001's valid_from")


def test_valid_from_must_be_utc(copy: Path) -> None:
    manifest = copy / "v0001" / "manifest.yaml"
    bad = 'valid_from: "2013-01-01T00:00:00+02:00"'
    replace_line(manifest, 'valid_from: "2013-01-01T00:00:00Z"', bad)
    problems = problems_of(copy)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{manifest}: line {line_of(manifest, bad)}: valid_from: Value error, must be an ISO timestamp in UTC"
    )


def test_every_problem_is_collected_across_files_and_versions(copy: Path) -> None:
    replace_line(copy / "v0001" / "topology.csv", "app01,site01-host0001,true", "app99,site01-host0001,true")
    append(copy / "v0002" / "servers.csv", "new-host,site01,web,prod,,\n")
    problems = problems_of(copy)
    assert len(problems) == 2, problems
    assert "v0001/topology.csv: row 1 (line 2): app: unknown app 'app99'" in problems[0]
    assert "v0002/servers.csv: row 218 (line 219): host: no primary app" in problems[1]


def test_directory_without_versions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    with pytest.raises(MasterDataError, match="no version folders"):
        load_master_data(tmp_path)
