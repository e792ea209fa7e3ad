"""SQL table source against SQLite files: late rows, exact boundaries, no SQL injection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rtdp_dagster.collection.sources.sql import SqlTableSource
from rtdp_dagster.config.sources import SqlSourceConfig
from rtdp_dagster.envelope.records import RawRecord

NAMESPACE = "sqlite.local.metrics.points.v1.0.0"
HOSTILE = "x'); DROP TABLE points; --"


def make_table(path: Path, table: str, ts_type: str = "INTEGER") -> sqlite3.Connection:
    connection = sqlite3.connect(path)
    quoted = '"' + table.replace('"', '""') + '"'
    connection.execute(
        f"CREATE TABLE {quoted} (ts {ts_type}, metric TEXT, host TEXT, value NUMERIC, op TEXT, version INTEGER)"
    )
    connection.commit()
    return connection


def insert(connection: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
    quoted = '"' + table.replace('"', '""') + '"'
    connection.executemany(f"INSERT INTO {quoted} (ts, metric, host, value) VALUES (?, ?, ?, ?)", rows)
    connection.commit()


def source_for(path: Path, table: str = "points", **overrides: Any) -> SqlTableSource:
    options: dict[str, Any] = {
        "name": "sql_points",
        "namespace": NAMESPACE,
        "url": f"sqlite:///{path}",
        "table": table,
        "timestamp_column": "ts",
        "value_column": "value",
        "tag_columns": ["host"],
        "metric_column": "metric",
    }
    options.update(overrides)
    return SqlTableSource(SqlSourceConfig(**options))


def read(source: SqlTableSource, start: int, end: int) -> list[RawRecord]:
    return list(source.read_window(start, end, now_ms=end))


def test_rows_inserted_late_appear_when_the_window_is_read_again(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    connection = make_table(db, "points")
    insert(connection, "points", [(1_500, "cpu", "h1", 1.0), (1_600, "cpu", "h2", 2.0)])
    source = source_for(db)
    try:
        first = read(source, 1_000, 2_000)
        insert(connection, "points", [(1_550, "cpu", "h3", 3.0)])
        second = read(source, 1_000, 2_000)
    finally:
        source.close()
        connection.close()
    assert [(r.ts_ms, r.tags["host"]) for r in first] == [(1_500, "h1"), (1_600, "h2")]
    assert [(r.ts_ms, r.tags["host"], r.value) for r in second] == [
        (1_500, "h1", 1.0),
        (1_550, "h3", 3.0),
        (1_600, "h2", 2.0),
    ]
    assert all(r.metric == "cpu" and r.op == "i" and r.version is None for r in second)


def test_window_is_half_open(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    connection = make_table(db, "points")
    insert(connection, "points", [(ts, "cpu", "h1", float(ts)) for ts in (999, 1_000, 1_001, 1_999, 2_000, 2_001)])
    connection.close()
    source = source_for(db)
    try:
        assert [r.ts_ms for r in read(source, 1_000, 2_000)] == [1_001, 1_999, 2_000]
        assert [r.ts_ms for r in read(source, 2_000, 3_000)] == [2_001]
    finally:
        source.close()


def test_hostile_names_and_values_cannot_inject_sql(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    table = 'weird "table"; DROP TABLE points; --'
    connection = make_table(db, table)
    make_table(db, "points").close()
    insert(connection, table, [(1_500, HOSTILE, HOSTILE, 1.0)])
    insert(connection, "points", [(1_500, "cpu", "h1", 1.0)])
    source = source_for(db, table=table)
    try:
        records = read(source, 1_000, 2_000)
    finally:
        source.close()
    assert [(r.metric, r.tags, r.value) for r in records] == [(HOSTILE, {"host": HOSTILE}, 1.0)]
    # Both tables are intact.
    assert connection.execute('SELECT count(*) FROM "points"').fetchone() == (1,)
    connection.close()


def test_non_numeric_value_is_yielded_with_the_raw_row(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    connection = make_table(db, "points")
    insert(connection, "points", [(1_500, "cpu", "h1", "broken"), (1_600, "cpu", None, "2.5")])
    connection.close()
    source = source_for(db)
    try:
        broken, numeric_text = read(source, 1_000, 2_000)
    finally:
        source.close()
    assert broken.value == "broken"
    assert broken.raw == {"ts": 1_500, "value": "broken", "host": "h1", "metric": "cpu"}
    # Numeric text becomes a number; a NULL tag is left out rather than turned into "None".
    assert numeric_text.value == 2.5 and numeric_text.tags == {}


def test_op_and_version_columns_and_fixed_metric(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    connection = make_table(db, "points")
    connection.executemany(
        "INSERT INTO points (ts, host, value, op, version) VALUES (?, ?, ?, ?, ?)",
        [
            (1_500, "h1", 1.0, None, 10),
            (1_500, "h1", 1.5, "update", 20),
            (1_500, "h1", 0, "D", 30),
            (1_600, "h1", 1, "x", 5),
        ],
    )
    connection.commit()
    connection.close()
    source = source_for(db, metric="sys.cpu", metric_column=None, op_column="op", version_column="version")
    try:
        records = read(source, 1_000, 2_000)
    finally:
        source.close()
    assert [(r.metric, r.op, r.version) for r in records] == [
        ("sys.cpu", "i", 10),
        ("sys.cpu", "u", 20),
        ("sys.cpu", "d", 30),
        # Unknown operations are passed on for the collector to reject as invalid_op.
        ("sys.cpu", "x", 5),
    ]


def test_epoch_seconds_unit(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    connection = make_table(db, "points", ts_type="REAL")
    insert(connection, "points", [(ts, "cpu", "h1", 1.0) for ts in (0.999, 1.0, 1.1, 1.999, 2.0, 2.001)])
    connection.close()
    source = source_for(db, timestamp_unit="s")
    try:
        assert [r.ts_ms for r in read(source, 1_000, 2_000)] == [1_100, 1_999, 2_000]
    finally:
        source.close()


def test_iso_text_unit(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    connection = make_table(db, "points", ts_type="TEXT")
    # Text sorting like timestamp_format; "…02.5" still sorts right, "…03x" sorts inside (2 s, 4 s].
    stored = [f"1970-01-01 00:00:0{s}" for s in (0, 1, 2, 3)] + ["1970-01-01 00:00:02.5", "1970-01-01 00:00:03x"]
    insert(connection, "points", [(ts, "cpu", "h1", 1.0) for ts in stored])
    connection.close()
    source = source_for(db, timestamp_unit="iso")
    try:
        first = read(source, 1_000, 2_000)
        second = read(source, 2_000, 4_000)
    finally:
        source.close()
    assert [r.ts_ms for r in first] == [2_000]
    # The unreadable timestamp is yielded (ts None, raw kept) in the window its text sorts into.
    assert [r.ts_ms for r in second] == [2_500, 3_000, None]
    assert second[-1].raw["ts"] == "1970-01-01 00:00:03x"


def test_native_datetime_column(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    table = sa.Table(
        "points",
        sa.MetaData(),
        sa.Column("ts", sa.DateTime),
        sa.Column("metric", sa.String),
        sa.Column("host", sa.String),
        sa.Column("value", sa.Float),
    )
    table.create(engine)
    moments = [datetime(2024, 1, 1, 0, 0, second) for second in (1, 2, 3)]
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"ts": m, "metric": "cpu", "host": "h1", "value": 1.0} for m in moments])
    engine.dispose()
    start = int(datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp() * 1000)
    source = source_for(db, timestamp_unit="iso")
    try:
        assert [r.ts_ms for r in read(source, start, start + 1_000)] == [start + 1_000]
    finally:
        source.close()


def test_unknown_column_fails_with_its_name(tmp_path: Path) -> None:
    db = tmp_path / "points.db"
    make_table(db, "points").close()
    source = source_for(db, tag_columns=["host", "rack"])
    with pytest.raises(ValueError, match="rack"):
        read(source, 0, 1)
    source.close()
