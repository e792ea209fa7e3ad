"""SQL table source: a window is the rows whose timestamp column lies in (start, end].

Any SQLAlchemy URL works (SQLite needs no extra driver). The table is reflected once, so every
identifier is quoted by SQLAlchemy and every bound is a bound parameter: neither the
configuration nor the table's content can inject SQL.

Readiness is physical: a row is there or not. A row inserted late into the table shows up when
its window is read again (waves 2 and 3), so ``now_ms`` does not filter anything here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, MetaData, Table, bindparam, create_engine, select, type_coerce
from sqlalchemy.engine import URL, make_url
from sqlalchemy.types import DateTime, NullType

from rtdp_dagster.collection.sources.fields import (
    datetime_to_ms,
    iso_to_ms,
    jsonable,
    ms_to_datetime,
    number_or_as_read,
)
from rtdp_dagster.config.sources import SqlSourceConfig
from rtdp_dagster.envelope.records import Op, RawRecord

# Spellings of operations seen in change tables (Debezium: c/r/u/d). NULL means insert. Anything
# else is passed on unchanged, so the collector dead-letters it as an invalid operation.
_OPS: dict[str, Op] = {
    "i": "i",
    "insert": "i",
    "c": "i",
    "create": "i",
    "r": "i",
    "u": "u",
    "update": "u",
    "d": "d",
    "delete": "d",
}
# ISO text bounds are widened by this much in SQL and then filtered exactly after parsing, so
# text that differs from timestamp_format in sub-second detail is never lost between windows.
_ISO_MARGIN_MS = 1000
_FETCH_ROWS = 5000


def engine_url(config: SqlSourceConfig) -> URL:
    url = make_url(config.url)
    if config.password_env:
        password = os.environ.get(config.password_env)
        if password is None:
            raise ValueError(f"{config.name}: environment variable {config.password_env} (password_env) is not set")
        url = url.set(password=password)
    return url


def _epoch_ms(number: float | int | Decimal, scale: int) -> int:
    # Ceiling keeps (start, end] on integer ms consistent with the SQL comparison on the stored
    # number; rounding to ns first absorbs float noise such as 1.1 * 1000 = 1100.0000000000002.
    return math.ceil(round(float(number) * scale, 6))


def _version(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return datetime_to_ms(value)
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.lstrip("-").isdigit() else iso_to_ms(text)
    return None


def _op(value: Any) -> Op:
    if value is None:
        return "i"
    text = str(value).strip().lower()
    return _OPS.get(text, cast(Op, str(value)))


class SqlTableSource:
    """Reads (start, end] windows from one table; see SqlSourceConfig for the column mapping."""

    def __init__(self, config: SqlSourceConfig) -> None:
        self.name = config.name
        self._config = config
        self._engine = create_engine(engine_url(config), pool_pre_ping=True)
        self._table: Table | None = None
        # Distinct columns to select, in a fixed order; rows are read by position.
        wanted = [config.timestamp_column, config.value_column, *config.tag_columns]
        wanted += [name for name in (config.metric_column, config.op_column, config.version_column) if name]
        self._columns = list(dict.fromkeys(wanted))
        self._position = {name: index for index, name in enumerate(self._columns)}

    def _reflected(self) -> Table:
        # Reflected on first read, not at construction: the table may not exist yet when the
        # platform starts, and a bad column name should fail the read with a clear message.
        if self._table is None:
            table = Table(self._config.table, MetaData(schema=self._config.db_schema), autoload_with=self._engine)
            missing = [name for name in self._columns if name not in table.c]
            if missing:
                raise ValueError(f"{self.name}: table {self._config.table!r} has no column(s) {missing}")
            self._table = table
        return self._table

    def _bounds(self, column: ColumnElement[Any], start_ms: int, end_ms: int) -> tuple[Any, Any]:
        unit = self._config.timestamp_unit
        if unit == "ms":
            return start_ms, end_ms
        if unit == "s":
            return start_ms / 1000, end_ms / 1000
        low, high = ms_to_datetime(start_ms - _ISO_MARGIN_MS), ms_to_datetime(end_ms + _ISO_MARGIN_MS)
        if isinstance(column.type, DateTime):
            if not column.type.timezone:
                low, high = low.replace(tzinfo=None), high.replace(tzinfo=None)
            return low, high
        return self._iso_text(low), self._iso_text(high)

    def _iso_text(self, moment: datetime) -> str:
        return moment.astimezone(UTC).strftime(self._config.timestamp_format)

    def _ts_ms(self, value: Any) -> int | None:
        if value is None or isinstance(value, bool):
            return None
        unit = self._config.timestamp_unit
        if isinstance(value, datetime):
            return datetime_to_ms(value)
        if isinstance(value, int) and unit == "ms":
            return value
        if isinstance(value, int | float | Decimal) and unit != "iso":
            return _epoch_ms(value, 1 if unit == "ms" else 1000) if math.isfinite(value) else None
        if isinstance(value, str):
            if unit == "iso":
                return iso_to_ms(value)
            number = number_or_as_read(value)
            return _epoch_ms(number, 1 if unit == "ms" else 1000) if isinstance(number, float) else None
        return None

    def read_window(self, start_ms: int, end_ms: int, now_ms: int) -> Iterator[RawRecord]:
        del now_ms  # readiness is physical: a row is in the table or it is not
        table = self._reflected()
        ts_column = table.c[self._config.timestamp_column]
        low, high = self._bounds(ts_column, start_ms, end_ms)
        # Values are fetched without the reflected types' result processing: a text value in a
        # NUMERIC column (SQLite stores what it is given) must reach the collector, not raise here.
        selected = [type_coerce(table.c[name], NullType()) for name in self._columns]
        statement = (
            select(*selected)
            .where(ts_column > bindparam("window_start", low), ts_column <= bindparam("window_end", high))
            .order_by(ts_column)
        )
        text_range = (self._iso_text(ms_to_datetime(start_ms)), self._iso_text(ms_to_datetime(end_ms)))
        exact_filter = self._config.timestamp_unit == "iso"
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=_FETCH_ROWS).execute(statement)
            for row in result:
                record = self._record(row)
                if exact_filter and not self._in_window(record, row, start_ms, end_ms, text_range):
                    continue
                yield record

    def _in_window(
        self,
        record: RawRecord,
        row: Sequence[Any],
        start_ms: int,
        end_ms: int,
        text_range: tuple[str, str],
    ) -> bool:
        if record.ts_ms is not None:
            return start_ms < record.ts_ms <= end_ms
        # Unreadable time: the text order decides, so the row belongs to exactly one window.
        text = row[self._position[self._config.timestamp_column]]
        return isinstance(text, str) and text_range[0] < text <= text_range[1]

    def _record(self, row: Sequence[Any]) -> RawRecord:
        config, position = self._config, self._position

        def column(name: str | None) -> Any:
            return row[position[name]] if name else None

        metric = config.metric if config.metric_column is None else column(config.metric_column)
        tags = {name: str(row[position[name]]) for name in config.tag_columns if row[position[name]] is not None}
        return RawRecord(
            metric=None if metric is None else str(metric),
            tags=tags,
            value=number_or_as_read(column(config.value_column)),
            ts_ms=self._ts_ms(column(config.timestamp_column)),
            op=_op(column(config.op_column)),
            version=_version(column(config.version_column)),
            raw={name: jsonable(row[index]) for index, name in enumerate(self._columns)},
        )

    def close(self) -> None:
        self._engine.dispose()
