"""The benchmark record format, and writing results as JSON, a markdown summary and plots.

Every figure is a record ``{scenario, figure, value, unit, baseline, ratio, machine, date}``;
``ratio`` is value / baseline (None without a baseline). ``bench/results/latest.json`` holds the
last run and ``bench/results/<date>.json`` a dated copy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {os.cpu_count()} cores {memory_gib:.0f} GiB, Python {platform.python_version()}"


@dataclass
class Record:
    scenario: str
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    machine: str = field(default_factory=machine)
    date: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    # Raw samples behind a figure (latencies, per-window rates) for the plots.
    samples: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.baseline and self.ratio is None:
            self.ratio = round(self.value / self.baseline, 4)

    def to_json(self) -> dict:
        record = asdict(self)
        if not record["samples"]:
            record.pop("samples")
        return record


def merged_with_latest(records: list[Record], latest: Path) -> list[Record]:
    """The scenarios of this run, plus the other scenarios' last results (a partial run keeps them)."""
    if not latest.exists():
        return records
    ran = {record.scenario for record in records}
    kept = [Record(**row) for row in json.loads(latest.read_text()) if row["scenario"] not in ran]
    return kept + records


def write_results(records: list[Record], directory: Path = RESULTS_DIR) -> Path:
    """This run to ``<date>.json``; ``latest.json``, ``summary.md`` and the plots to every scenario's last run."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (directory / f"{stamp}.json").write_text(json.dumps([record.to_json() for record in records], indent=2) + "\n")
    latest = directory / "latest.json"
    current = merged_with_latest(records, latest)
    latest.write_text(json.dumps([record.to_json() for record in current], indent=2) + "\n")
    (directory / "summary.md").write_text(summary_markdown(current))
    plot(current, directory)
    return latest


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def summary_markdown(records: list[Record]) -> str:
    lines = [
        f"Benchmarks on {records[0].machine if records else machine()}",
        "",
        "| scenario | figure | value | unit | baseline | ratio | measured |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for r in records:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        lines.append(
            f"| {r.scenario} | {r.figure} | {_number(r.value)} | {r.unit} | {_number(r.baseline)} | {ratio} "
            f"| {r.date} |"
        )
    return "\n".join(lines) + "\n"


def _short(figure: str) -> str:
    return figure.replace("/api/query ", "").replace(", 100 series", "")


def plot(records: list[Record], directory: Path) -> None:
    """One PNG per scenario: a grouped bar chart per unit (each figure beside its baseline), then
    the distribution of every recorded sample series (latencies, per-window rates) as box plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for scenario in sorted({r.scenario for r in records}):
        rows = [r for r in records if r.scenario == scenario]
        units = sorted({r.unit for r in rows if r.baseline is not None})
        with_samples = [r for r in rows if r.samples]
        panels = len(units) + (1 if with_samples else 0)
        if not panels:
            continue
        figure, axes = plt.subplots(panels, 1, figsize=(11, 4.2 * panels), squeeze=False)
        for axis, unit in zip(axes[:, 0], units, strict=False):
            compared = [r for r in rows if r.baseline is not None and r.unit == unit]
            positions = range(len(compared))
            axis.bar([x - 0.2 for x in positions], [r.value for r in compared], 0.4, label="rtdp", color="tab:blue")
            axis.bar(
                [x + 0.2 for x in positions],
                [r.baseline or 0 for r in compared],
                0.4,
                label="baseline",
                color="tab:gray",
            )
            for x, record in zip(positions, compared, strict=True):
                axis.annotate(
                    f"x{record.ratio:.2f}",
                    (x, max(record.value, record.baseline or 0)),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
            axis.set_xticks(list(positions), [_short(r.figure) for r in compared], rotation=20, ha="right", fontsize=8)
            axis.set_ylabel(unit)
            axis.set_title(f"{scenario}: rtdp beside its baseline (same run; label: ratio)")
            axis.legend()
        if with_samples:
            axis = axes[-1, 0]
            axis.boxplot([r.samples for r in with_samples], showfliers=True)
            axis.set_xticks(
                range(1, len(with_samples) + 1),
                [_short(r.figure) for r in with_samples],
                rotation=20,
                ha="right",
                fontsize=8,
            )
            axis.set_ylabel(", ".join(sorted({r.unit for r in with_samples})))
            axis.set_title(f"{scenario}: distribution of the samples")
        figure.tight_layout()
        figure.savefig(directory / f"{scenario}.png", dpi=90)
        plt.close(figure)
