"""Replay of the NAB AWS CloudWatch CSV files as a live source.

Each file (``timestamp,value``, UTC, 5-minute cadence) is one series; its metric and tags come
from the file name (``nab_series``). Files are loaded once, on the first read, and kept in memory
merged into one time order, so a window is two binary searches and a slice.

``shift_to_now`` moves each file so its last point lands on the anchor (floored to a whole
minute, so shifted times keep the file's alignment and stay whole seconds for telnet put).
A row becomes visible at ``ts_ms + delay``; the delay is a seeded function of
(seed, file name, row index), so every re-read of a window sees the same rows at the same now.
"""

from __future__ import annotations

import csv
import re
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rtdp_dagster.collection.sources.fields import iso_to_ms, number_or_as_read
from rtdp_dagster.collection.sources.readiness import delays_ms
from rtdp_dagster.collection.sources.seeded import keyed, mix_int, text_key
from rtdp_dagster.config.sources import CsvReplaySourceConfig, ReadinessDelayConfig
from rtdp_dagster.envelope.records import RawRecord

METRIC_PREFIX = "cloudwatch"
_MINUTE_MS = 60_000
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_EC2_INSTANCE = re.compile(r"^i-[0-9a-f]+$")
_HEX_ID = re.compile(r"^[0-9a-f]{6,}$")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_OPENTSDB = re.compile(r"[^A-Za-z0-9._/-]")

I64 = npt.NDArray[np.int64]


def nab_series(file_name: str) -> tuple[str, dict[str, str]]:
    """Metric and tags of a NAB CloudWatch file, read from its name.

    ``<service>_<metric words>_<id>.csv`` gives metric ``cloudwatch.<service>.<metric words>``
    and tags ``service`` and ``instance``; an AWS region token becomes tag ``region``, an EC2 id
    (``i-...``) or a last token of six or more hex digits the ``instance``; CamelCase words
    become snake_case and characters OpenTSDB refuses become ``_``. Every series gets at least
    the ``service`` tag (OpenTSDB needs one).

    - ``ec2_cpu_utilization_24ae8d.csv`` → ``cloudwatch.ec2.cpu_utilization``,
      ``{"service": "ec2", "instance": "24ae8d"}``
    - ``iio_us-east-1_i-a2eb1cd9_NetworkIn.csv`` → ``cloudwatch.iio.network_in``,
      ``{"service": "iio", "region": "us-east-1", "instance": "i-a2eb1cd9"}``
    - ``grok_asg_anomaly.csv`` → ``cloudwatch.grok.asg_anomaly``, ``{"service": "grok"}``
    """
    service, *words = Path(file_name).stem.split("_")
    tags = {"service": _NOT_OPENTSDB.sub("_", service.lower())}
    metric_words = []
    for position, word in enumerate(words):
        if _REGION.match(word):
            tags["region"] = word
        elif _EC2_INSTANCE.match(word) or (position == len(words) - 1 and _HEX_ID.match(word)):
            tags["instance"] = word
        else:
            metric_words.append(_CAMEL_BOUNDARY.sub("_", word).lower())
    metric = ".".join(part for part in (METRIC_PREFIX, tags["service"], "_".join(metric_words)) if part)
    return _NOT_OPENTSDB.sub("_", metric), tags


@dataclass(frozen=True)
class ReplayedSeries:
    """One file as replayed: rows sorted by (shifted) time, and when each becomes visible."""

    file: str
    metric: str
    tags: dict[str, str]
    # Shift applied to every timestamp of the file (0 without shift_to_now).
    offset_ms: int
    timestamps_ms: I64
    visible_at_ms: I64
    # Value as read (a float, or the text when it is not a number), line number, line text.
    values: list[Any]
    lines: list[int]
    texts: list[str]
    # Rows whose timestamp cannot be read: yielded with ts_ms None in the window of the row
    # before them (placement), once that placement is visible.
    unreadable: list[tuple[int, int, int, str, Any]] = field(default_factory=list)


def _read_rows(path: Path) -> list[tuple[int, str, str, str]]:
    """(line number, timestamp text, value text, line text) of every data row."""
    rows = []
    with path.open(newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not row or (line_number == 1 and row[0].strip().lower() == "timestamp"):
                continue
            text = ",".join(row)
            rows.append((line_number, row[0], row[1] if len(row) > 1 else "", text))
    return rows


def load_series(path: Path, seed: int, delay: ReadinessDelayConfig, anchor_ms: int | None) -> ReplayedSeries:
    """Read one file; anchor_ms None keeps the original times."""
    metric, tags = nab_series(path.name)
    rows = _read_rows(path)
    times = [iso_to_ms(row[1]) for row in rows]
    readable = [index for index, ts in enumerate(times) if ts is not None]
    raw_ts = np.array([times[index] for index in readable], dtype=np.int64)
    offset_ms = 0
    if anchor_ms is not None and raw_ts.size:
        offset_ms = (anchor_ms // _MINUTE_MS) * _MINUTE_MS - int(raw_ts.max())
    # The delay of a row is keyed by its index in the file, not by its time or read order.
    file_key = mix_int(seed, text_key(path.name))
    all_delays = delays_ms(delay, keyed(file_key, np.arange(len(rows), dtype=np.int64)))
    order = np.argsort(raw_ts, kind="stable")
    sorted_rows = [readable[int(index)] for index in order]
    timestamps = raw_ts[order] + offset_ms
    visible_at = timestamps + all_delays[np.array(sorted_rows, dtype=np.int64)]
    unreadable = []
    last_placement = int(timestamps[0]) if timestamps.size else 0
    shifted_by_row = dict(zip(sorted_rows, timestamps.tolist(), strict=True))
    for index, row in enumerate(rows):
        if index in shifted_by_row:
            last_placement = shifted_by_row[index]
        else:
            line, _, value_text, text = row
            visible = last_placement + int(all_delays[index])
            unreadable.append((last_placement, visible, line, text, number_or_as_read(value_text)))
    unreadable.sort(key=lambda item: item[0])
    return ReplayedSeries(
        file=path.name,
        metric=metric,
        tags=tags,
        offset_ms=offset_ms,
        timestamps_ms=timestamps,
        visible_at_ms=visible_at,
        values=[number_or_as_read(rows[index][2]) for index in sorted_rows],
        lines=[rows[index][0] for index in sorted_rows],
        texts=[rows[index][3] for index in sorted_rows],
        unreadable=unreadable,
    )


@dataclass(frozen=True)
class _Timeline:
    """Every readable row of every file in one time order (ties keep file order), as plain
    lists: a window is two bisects and a slice, with no per-file or numpy cost per window."""

    timestamps: list[int]
    visible_at: list[int]
    files: list[int]
    rows: list[int]


def _timeline(series: list[ReplayedSeries]) -> _Timeline:
    timestamps = np.concatenate([item.timestamps_ms for item in series])
    order = np.argsort(timestamps, kind="stable")
    files = np.concatenate([np.full(len(item.timestamps_ms), number) for number, item in enumerate(series)])
    rows = np.concatenate([np.arange(len(item.timestamps_ms)) for item in series])
    return _Timeline(
        timestamps=timestamps[order].tolist(),
        visible_at=np.concatenate([item.visible_at_ms for item in series])[order].tolist(),
        files=files[order].tolist(),
        rows=rows[order].tolist(),
    )


class CsvReplaySource:
    """Serves (start, end] windows of the replayed files, honouring each row's readiness."""

    def __init__(self, config: CsvReplaySourceConfig, directory: Path, created_ms: int | None = None) -> None:
        self.name = config.name
        self._config = config
        self._directory = directory
        created = created_ms if created_ms is not None else time.time_ns() // 1_000_000
        anchor = config.anchor_ms if config.anchor_ms is not None else created
        self._anchor_ms = anchor if config.shift_to_now else None
        self._loaded: tuple[list[ReplayedSeries], _Timeline] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[list[ReplayedSeries], _Timeline]:
        with self._lock:
            if self._loaded is None:
                if not self._directory.is_dir():
                    raise FileNotFoundError(f"{self.name}: CSV directory {self._directory} does not exist")
                config = self._config
                paths = sorted(self._directory.glob(config.file_glob))
                if not paths:
                    raise FileNotFoundError(f"{self.name}: no file matches {config.file_glob} in {self._directory}")
                series = [load_series(path, config.seed, config.delay, self._anchor_ms) for path in paths]
                self._loaded = (series, _timeline(series))
            return self._loaded

    def series(self) -> list[ReplayedSeries]:
        """Every file as replayed (loaded on first use), in file name order."""
        return self._load()[0]

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]:
        # In time order across files, so each series is in time order (what Kafka keys need).
        series, timeline = self._load()
        timestamps, visible_at, files, rows = timeline.timestamps, timeline.visible_at, timeline.files, timeline.rows
        for position in range(bisect_right(timestamps, start_ms), bisect_right(timestamps, end_ms)):
            if visible_at[position] <= now_ms:
                item, row = series[files[position]], rows[position]
                raw = {"file": item.file, "line": item.lines[row], "row": item.texts[row]}
                # Positional arguments: this loop is the replay's hot path.
                yield RawRecord(item.metric, dict(item.tags), item.values[row], timestamps[position], "i", None, raw)
        for item in series:
            for placement, visible, line, text, value in item.unreadable:
                if start_ms < placement <= end_ms and visible <= now_ms:
                    raw = {"file": item.file, "line": line, "row": text}
                    yield RawRecord(item.metric, dict(item.tags), value, None, "i", None, raw)

    def close(self) -> None:
        # Nothing to release: the files were read into memory.
        return None
