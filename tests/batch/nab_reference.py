"""The NAB CloudWatch files as bronze records, and an independent pandas computation of silver and rollups.

The reference shares nothing with ``rtdp_dagster.batch``: pandas parses the CSV files, drops
repeated timestamps (the last row of a file wins, as the collector's row numbering makes the last
row read the highest ``ums_id_``), buckets with pandas' own calendar (``floor``, ``to_period``) and
sums each value rounded HALF_UP to 12 decimals with Python's ``decimal`` — what a Spark cast to
DECIMAL(38,12) does, from the value's shortest decimal text.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

from rtdp_dagster.collection.sources.csv_replay import nab_series
from rtdp_dagster.envelope.keys import series_key
from tests.batch.bronze_rows import Record

_TWELVE_DECIMALS = Decimal(1).scaleb(-12)


def nab_records(directory: Path) -> list[Record]:
    """Every CSV row as a wave-1 record, and every fifth hour re-read whole by wave 2.

    As a collector numbers them, ``ums_id_`` grows with the wave and with the row's place in the
    file, so wave 2 wins over wave 1 and, within a read, a repeated timestamp's last row wins.
    """
    records: list[Record] = []
    offset = 0
    for number, path in enumerate(sorted(directory.glob("*.csv"))):
        metric, tags = nab_series(path.name)
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        for line, (stamp, value) in enumerate(rows):
            ts = int(dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC).timestamp() * 1000)
            for wave in (1, 2) if (ts // 3_600_000) % 5 == 0 else (1,):
                offset += 1
                records.append(
                    Record(
                        metric,
                        tags,
                        ts,
                        float(value),
                        ums_id=wave * 10**9 + line,
                        wave=wave,
                        partition=number % 3,
                        offset=offset,
                    )
                )
    return records


def reference_silver(directory: Path) -> pd.DataFrame:
    """series_key, metric, tags, ts_ms, value: one row per series and timestamp, the file's last row."""
    frames = []
    for path in sorted(directory.glob("*.csv")):
        metric, tags = nab_series(path.name)
        # Values as text, then Python's correctly rounded float(), like the collector's parse.
        frame = pd.read_csv(path, dtype=str)
        frame["value"] = frame["value"].map(float)
        frame["ts_ms"] = pd.to_datetime(frame["timestamp"], utc=True).astype("int64") // 1_000_000
        frame = frame.drop_duplicates("ts_ms", keep="last")
        frames.append(frame.assign(series_key=series_key(metric, tags), metric=metric, tags=[tags] * len(frame)))
    return pd.concat(frames, ignore_index=True).loc[:, ["series_key", "metric", "tags", "ts_ms", "value"]]


def _bucket_ms(ts_ms: pd.Series, level: str) -> pd.Series:
    times = pd.to_datetime(ts_ms, unit="ms")  # naive UTC
    if level in ("1m", "1h", "1d"):
        starts = times.dt.floor({"1m": "min", "1h": "h", "1d": "D"}[level])
    elif level == "1w":
        starts = times.dt.floor("D") - pd.to_timedelta(times.dt.dayofweek, unit="D")  # Monday = 0
    else:
        starts = times.dt.to_period({"1mo": "M", "1y": "Y"}[level]).dt.start_time
    return starts.astype("datetime64[ms]").astype("int64")


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_TWELVE_DECIMALS, rounding=ROUND_HALF_UP)


def reference_rollup(silver: pd.DataFrame, level: str) -> dict[tuple[str, int], tuple]:
    """(series_key, bucket_start) → (count, sum, min, max, first_ts, first, last_ts, last)."""
    frame = silver.assign(bucket=_bucket_ms(silver.loc[:, "ts_ms"], level)).sort_values(["series_key", "ts_ms"])
    grouped = frame.groupby(["series_key", "bucket"], sort=False)
    table = pd.DataFrame(
        grouped.agg(
            n=("value", "size"),
            low=("value", "min"),
            high=("value", "max"),
            first_ts=("ts_ms", "first"),
            first=("value", "first"),
            last_ts=("ts_ms", "last"),
            last=("value", "last"),
        )
    )
    table["sum"] = grouped["value"].agg(lambda values: sum((_decimal(v) for v in values), Decimal(0)))
    columns = [table[name].tolist() for name in ("n", "sum", "low", "high", "first_ts", "first", "last_ts", "last")]
    types = (int, Decimal, float, float, int, float, int, float)
    return {
        (key, int(bucket)): tuple(kind(column[i]) for kind, column in zip(types, columns, strict=True))
        for i, (key, bucket) in enumerate(zip(*(table.index.get_level_values(n) for n in (0, 1)), strict=True))
    }
