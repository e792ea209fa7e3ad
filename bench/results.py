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
    # Raw samples behind a figure (latencies, per-second rates) for the plots; not in the JSON.
    samples: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.baseline and self.ratio is None:
            self.ratio = round(self.value / self.baseline, 4)

    def to_json(self) -> dict:
        record = asdict(self)
        record.pop("samples")
        return record


def write_results(records: list[Record], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    payload = json.dumps([record.to_json() for record in records], indent=2) + "\n"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (directory / f"{stamp}.json").write_text(payload)
    latest = directory / "latest.json"
    latest.write_text(payload)
    (directory / "summary.md").write_text(summary_markdown(records))
    plot(records, directory)
    return latest


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def summary_markdown(records: list[Record]) -> str:
    lines = [
        f"Benchmarks on {records[0].machine if records else machine()}, {records[0].date if records else ''}",
        "",
        "| scenario | figure | value | unit | baseline | ratio |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in records:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        lines.append(f"| {r.scenario} | {r.figure} | {_number(r.value)} | {r.unit} | {_number(r.baseline)} | {ratio} |")
    return "\n".join(lines) + "\n"


def plot(records: list[Record], directory: Path) -> None:
    """One PNG per scenario: each figure beside its baseline; sample series where recorded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({r.scenario for r in records})
    for scenario in scenarios:
        rows = [r for r in records if r.scenario == scenario]
        with_samples = [r for r in rows if r.samples]
        panels = 1 + (1 if with_samples else 0)
        figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
        bars = axes[0][0]
        labels = [f"{r.figure}\n({r.unit})" for r in rows]
        positions = range(len(rows))
        bars.bar([p - 0.2 for p in positions], [r.value for r in rows], width=0.4, label="rtdp")
        bars.bar([p + 0.2 for p in positions], [r.baseline or 0 for r in rows], width=0.4, label="baseline")
        bars.set_xticks(list(positions), labels, fontsize=7)
        bars.set_title(scenario)
        bars.legend()
        if with_samples:
            series = axes[0][1]
            for r in with_samples:
                series.plot(r.samples, label=f"{r.figure} ({r.unit})")
            series.set_title("samples")
            series.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(directory / f"{scenario}.png", dpi=100)
        plt.close(figure)
