"""Writes servers.csv and topology.csv of v0001 and v0002 (the long lists); everything else is hand-written.

Run from the repository root after changing the rules below, then review and commit the diff:

    .venv/bin/python master_data/generate.py

The files it writes are the files of record; editing them by hand afterwards is fine (this
script is how they were first made, not a build step).

Fleet covered:

- the synthetic fleet of ``rtdp_dagster.collection.sources.synthetic``: sites site01..site04,
  hosts ``siteNN-host0001`` .. ``siteNN-host0050``; primary app by host number (0001-0020 app01
  web, 0021-0040 app02 api, 0041-0050 app03 worker), and every tenth host also runs app03;
- the 17 NAB AWS CloudWatch series at site ``aws-us-east-1``: a host per file, named by the
  ``instance`` tag the CSV replay gives it (``nab_series``), or by the file stem when the file
  name carries no instance (``grok_asg_anomaly``); RDS instances run app05, the rest app04.

v0002 applies ``V2_SITE_MOVES`` and ``V2_APP_MOVES`` to v0001.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rtdp_dagster.collection.sources.csv_replay import nab_series

HERE = Path(__file__).resolve().parent
SYNTHETIC_SITES = ("site01", "site02", "site03", "site04")
HOSTS_PER_SITE = 50
# File names of github.com/numenta/NAB data/realAWSCloudwatch (also in ../shared/data/nab).
NAB_FILES = (
    "ec2_cpu_utilization_24ae8d.csv",
    "ec2_cpu_utilization_53ea38.csv",
    "ec2_cpu_utilization_5f5533.csv",
    "ec2_cpu_utilization_77c1ca.csv",
    "ec2_cpu_utilization_825cc2.csv",
    "ec2_cpu_utilization_ac20cd.csv",
    "ec2_cpu_utilization_c6585a.csv",
    "ec2_cpu_utilization_fe7f93.csv",
    "ec2_disk_write_bytes_1ef3de.csv",
    "ec2_disk_write_bytes_c0d644.csv",
    "ec2_network_in_257a54.csv",
    "ec2_network_in_5abac7.csv",
    "elb_request_count_8c0756.csv",
    "grok_asg_anomaly.csv",
    "iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    "rds_cpu_utilization_cc0c53.csv",
    "rds_cpu_utilization_e47b3b.csv",
)
NAB_SITE = "aws-us-east-1"
NAB_ROLES = {"ec2": "compute", "iio": "compute", "elb": "load-balancer", "rds": "database", "grok": "autoscaling"}
# v0002: two hosts re-racked into another data centre, four hosts given to another app.
V2_SITE_MOVES = {"site01-host0049": "site03", "site01-host0050": "site03"}
V2_APP_MOVES = {"site02-host0001": "app02", "site02-host0002": "app02", "site02-host0003": "app02", "ac20cd": "app01"}

SERVER_COLUMNS: list[str] = ["host", "site", "role", "environment", "os", "cpu_cores"]
TOPOLOGY_COLUMNS = ("app", "host", "primary")
Server = dict[str, str]
Deployment = tuple[str, str, bool]


def synthetic_fleet() -> tuple[list[Server], list[Deployment]]:
    servers, topology = [], []
    for site_number, site in enumerate(SYNTHETIC_SITES, start=1):
        for number in range(1, HOSTS_PER_SITE + 1):
            host = f"{site}-host{number:04d}"
            app, role, cores = ("app01", "web", "8") if number <= 20 else ("app02", "api", "16") if number <= 40 else (
                "app03", "worker", "32")  # fmt: skip
            servers.append({
                "host": host, "site": site, "role": role,
                # The last five hosts of each site are the staging environment.
                "environment": "staging" if number > HOSTS_PER_SITE - 5 else "prod",
                "os": "ubuntu-22.04" if site_number <= 2 else "rhel-9", "cpu_cores": cores,
            })  # fmt: skip
            topology.append((app, host, True))
            if number % 10 == 0 and app != "app03":
                topology.append(("app03", host, False))
    return servers, topology


def nab_fleet() -> tuple[list[Server], list[Deployment]]:
    servers, topology = [], []
    for file_name in NAB_FILES:
        _, tags = nab_series(file_name)
        host = tags.get("instance", Path(file_name).stem)
        service = tags["service"]
        managed = service in ("elb", "rds", "grok")
        servers.append({"host": host, "site": NAB_SITE, "role": NAB_ROLES[service], "environment": "prod",
                        "os": "" if managed else "amazon-linux-2", "cpu_cores": ""})  # fmt: skip
        topology.append(("app05" if service == "rds" else "app04", host, True))
    return servers, topology


def version_2(servers: list[Server], topology: list[Deployment]) -> tuple[list[Server], list[Deployment]]:
    moved = [{**server, "site": V2_SITE_MOVES.get(server["host"], server["site"])} for server in servers]
    retargeted = []
    for app, host, primary in topology:
        new_app = V2_APP_MOVES.get(host) if primary else None
        retargeted.append((new_app or app, host, primary))
    # A host moved to an app it already ran as secondary keeps one row only: the primary one.
    primaries = {(app, host) for app, host, primary in retargeted if primary}
    return moved, [row for row in retargeted if row[2] or (row[0], row[1]) not in primaries]


def write(folder: Path, servers: list[Server], topology: list[Deployment]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "servers.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, SERVER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(servers)
    with (folder / "topology.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TOPOLOGY_COLUMNS)
        writer.writerows((app, host, "true" if primary else "false") for app, host, primary in topology)


def main() -> None:
    synthetic, nab = synthetic_fleet(), nab_fleet()
    servers, topology = synthetic[0] + nab[0], synthetic[1] + nab[1]
    write(HERE / "v0001", servers, topology)
    write(HERE / "v0002", *version_2(servers, topology))
    print(f"wrote {len(servers)} servers to {HERE / 'v0001'} and {HERE / 'v0002'}")


if __name__ == "__main__":
    main()
