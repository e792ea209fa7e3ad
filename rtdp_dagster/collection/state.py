"""Durable collection state: window queue, cursors, seen points, and the collection log.

One SQLAlchemy database (SQLite under the run folder by default, any URL in production) holds,
per (source, wave):
- ``planned_until``: the end of the last planned window. The ticker plans (planned_until, now]
  in windows of at most max_window, so windows never overlap and never leave a gap;
- the **window queue**: planned windows, executed strictly in order; a window is marked done in
  the same transaction that writes its collection-log row, and only after Kafka acknowledged
  its records, so a crash re-reads at most the window that was in flight;
- **seen points**: compact hashes of the point keys each wave published per window, so a
  later wave can tell how many of its rows are new;
- the **collection log**: one row per executed window.

A server that restarted leaves the pool's connections dead: each is pinged before use, and
``store_unavailable`` tells an unreachable store (retry later) from any other database error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from rtdp_dagster.wall_clock import now_ms

_metadata = sa.MetaData()

cursors = sa.Table(
    "cursors",
    _metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("wave", sa.Integer, primary_key=True),
    sa.Column("planned_until", sa.BigInteger, nullable=False),
    # Start of the first window ever planned: where catch-up waves begin.
    sa.Column("origin", sa.BigInteger, nullable=False),
)

window_queue = sa.Table(
    "window_queue",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=False),
    sa.Column("end_ms", sa.BigInteger, nullable=False),
    sa.Column("planned_at", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_window_queue_pending", "source", "wave", "done", "id"),
)

seen_points = sa.Table(
    "seen_points",
    _metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("wave", sa.Integer, primary_key=True),
    sa.Column("start_ms", sa.BigInteger, primary_key=True),
    sa.Column("end_ms", sa.BigInteger, nullable=False),
    # Sorted uint64 prefixes of the point keys published in that window.
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)

collection_log = sa.Table(
    "collection_log",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("window_start", sa.BigInteger, nullable=False),
    sa.Column("window_end", sa.BigInteger, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rows_valid", sa.Integer, nullable=False),
    sa.Column("rows_new", sa.Integer, nullable=False),
    sa.Column("rows_dead_lettered", sa.Integer, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("finished_at", sa.BigInteger, nullable=False),
    sa.Index("ix_collection_log_window", "source", "window_end"),
)


@dataclass(frozen=True)
class Window:
    id: int
    source: str
    wave: int
    start_ms: int
    end_ms: int
    attempts: int


@dataclass(frozen=True)
class LogRow:
    source: str
    wave: int
    window_start: int
    window_end: int
    rows_read: int
    rows_valid: int
    rows_new: int
    rows_dead_lettered: int
    duration_ms: int
    status: str
    attempts: int
    finished_at: int


def key_hashes(point_keys: list[str]) -> np.ndarray:
    """Sorted unique 64-bit prefixes of hex point keys (collisions: ~1e-9 at 1e5 keys a window)."""
    if not point_keys:
        return np.empty(0, dtype=np.uint64)
    joined = "".join(point_keys)
    if len(joined) == 32 * len(point_keys):
        # Every key a 16-byte digest in hex (keys.point_key): its first 8 bytes, decoded in C at
        # once rather than a Python int() per key (a tenth of the collector's cost at 200k keys/s).
        prefixes = np.frombuffer(bytes.fromhex(joined), dtype=">u8")[::2].astype(np.uint64)
    else:
        prefixes = np.array([int(key[:16], 16) for key in point_keys], dtype=np.uint64)
    # Sort, then drop repeats: the same as np.unique, whose hashing path costs ~15x more here.
    prefixes.sort()
    return prefixes[np.concatenate(([True], prefixes[1:] != prefixes[:-1]))]


# libpq options unless the URL sets them: an unreachable host (not a refused port) would otherwise
# hang a connect, and a peer gone silent a query, for minutes.
_SERVER_CONNECT_ARGS = {"connect_timeout": 10, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def store_unavailable(exc: BaseException) -> bool:
    """The state store could not be reached (server down, restarted, network): worth retrying as is."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, PoolTimeout)  # no pooled connection came free in time


class CollectionState:
    def __init__(self, url: str) -> None:
        parsed = sa.engine.make_url(url)
        database = parsed.database
        if url.startswith("sqlite") and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = {}
        if parsed.get_backend_name() == "postgresql":
            connect_args = {key: value for key, value in _SERVER_CONNECT_ARGS.items() if key not in parsed.query}
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True, connect_args=connect_args)
        if self.engine.dialect.name == "sqlite":
            # Several processes (ingest, Dagster runs) share the file: WAL lets readers and one
            # writer work at once, and the busy timeout waits for the writer instead of failing.
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(connection, _record) -> None:
                cursor = connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        _metadata.create_all(self.engine)

    def plan_windows(
        self, source: str, wave: int, until_ms: int, window_ms: int, max_window_ms: int, first_start_ms: int
    ) -> list[tuple[int, int]]:
        """Append windows covering (planned_until, until_ms] to the queue; returns them.

        Nothing is planned while until_ms is not past the cursor: a clock that jumps backwards
        pauses planning instead of re-planning or overlapping windows. A gap longer than one
        window (outage, clock jump forwards) is split into windows of at most max_window_ms.
        """
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(cursors.c.planned_until).where(cursors.c.source == source, cursors.c.wave == wave)
            ).first()
            start = first_start_ms if row is None else row.planned_until
            if until_ms - start < min(window_ms, max_window_ms):
                return []
            planned = []
            step = max_window_ms
            while start < until_ms:
                end = min(start + step, until_ms)
                planned.append((start, end))
                start = end
            connection.execute(
                window_queue.insert(),
                [
                    {
                        "source": source,
                        "wave": wave,
                        "start_ms": s,
                        "end_ms": e,
                        "planned_at": now_ms(),
                        "attempts": 0,
                        "done": False,
                    }
                    for s, e in planned
                ],
            )
            if row is None:
                connection.execute(
                    cursors.insert().values(source=source, wave=wave, planned_until=until_ms, origin=first_start_ms)
                )
            else:
                connection.execute(
                    cursors.update()
                    .where(cursors.c.source == source, cursors.c.wave == wave)
                    .values(planned_until=until_ms)
                )
            return planned

    def origin(self, source: str, wave: int) -> int | None:
        """Start of the first window planned for this source and wave, if any."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(cursors.c.origin).where(cursors.c.source == source, cursors.c.wave == wave)
            ).scalar_one_or_none()

    def next_window(self, source: str, wave: int) -> Window | None:
        """The oldest window not done yet: windows are executed strictly in planning order."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(window_queue)
                .where(window_queue.c.source == source, window_queue.c.wave == wave, ~window_queue.c.done)
                .order_by(window_queue.c.id)
                .limit(1)
            ).first()
        if row is None:
            return None
        return Window(row.id, row.source, row.wave, row.start_ms, row.end_ms, row.attempts)

    def pending_count(self, source: str, wave: int) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count())
                .select_from(window_queue)
                .where(window_queue.c.source == source, window_queue.c.wave == wave, ~window_queue.c.done)
            ).scalar_one()

    def record_attempt(self, window: Window) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                window_queue.update().where(window_queue.c.id == window.id).values(attempts=window_queue.c.attempts + 1)
            )

    def seen_before(self, source: str, wave: int, start_ms: int, end_ms: int) -> np.ndarray:
        """Hashes published by earlier waves in windows overlapping (start_ms, end_ms]."""
        with self.engine.connect() as connection:
            blobs = connection.execute(
                sa.select(seen_points.c.hashes).where(
                    seen_points.c.source == source,
                    seen_points.c.wave < wave,
                    seen_points.c.end_ms > start_ms,
                    seen_points.c.start_ms < end_ms,
                )
            ).scalars()
            parts = [np.frombuffer(blob, dtype=np.uint64) for blob in blobs]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)

    def complete_window(self, window: Window, log: LogRow, new_hashes: np.ndarray) -> bool:
        """Mark the window done, store what it published and log it, in one transaction.

        False, writing nothing, when the window is done already: a commit whose acknowledgement was
        lost with the connection is retried by the collector, and must not log the window twice.
        """
        with self.engine.begin() as connection:
            marked = connection.execute(
                window_queue.update().where(window_queue.c.id == window.id, ~window_queue.c.done).values(done=True)
            )
            if marked.rowcount == 0:
                return False
            if new_hashes.size:
                connection.execute(
                    seen_points.insert().values(
                        source=window.source,
                        wave=window.wave,
                        start_ms=window.start_ms,
                        end_ms=window.end_ms,
                        hashes=new_hashes.astype(np.uint64).tobytes(),
                    )
                )
            connection.execute(collection_log.insert().values(**log.__dict__))
        return True

    def covered_until(self, source: str, wave: int) -> int | None:
        """End of the newest window this wave has collected for the source (None: none yet)."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.max(collection_log.c.window_end)).where(
                    collection_log.c.source == source, collection_log.c.wave == wave
                )
            ).scalar()

    def prune(self, source: str, older_than_ms: int) -> None:
        """Forget the source's seen points and finished queue entries of windows that ended before
        older_than_ms. Per source: each source's waves have their own progress."""
        with self.engine.begin() as connection:
            connection.execute(
                seen_points.delete().where(seen_points.c.source == source, seen_points.c.end_ms < older_than_ms)
            )
            connection.execute(
                window_queue.delete().where(
                    window_queue.c.source == source, window_queue.c.done, window_queue.c.end_ms < older_than_ms
                )
            )

    def log_rows(self, source: str | None = None, wave: int | None = None) -> list[LogRow]:
        query = sa.select(collection_log).order_by(collection_log.c.id)
        if source is not None:
            query = query.where(collection_log.c.source == source)
        if wave is not None:
            query = query.where(collection_log.c.wave == wave)
        with self.engine.connect() as connection:
            return [
                LogRow(**{name: getattr(row, name) for name in LogRow.__dataclass_fields__})
                for row in connection.execute(query)
            ]

    def summary(self) -> list[dict]:
        """Per source and wave: windows done and pending, rows read/new/dead-lettered, covered until."""
        log, queue = collection_log, window_queue
        with self.engine.connect() as connection:
            done = connection.execute(
                sa.select(
                    log.c.source,
                    log.c.wave,
                    sa.func.count().label("windows"),
                    sa.func.sum(log.c.rows_read).label("rows_read"),
                    sa.func.sum(log.c.rows_new).label("rows_new"),
                    sa.func.sum(log.c.rows_dead_lettered).label("rows_dead_lettered"),
                    sa.func.max(log.c.window_end).label("covered_until"),
                ).group_by(log.c.source, log.c.wave)
            ).all()
            pending = {
                (source, wave): count
                for source, wave, count in connection.execute(
                    sa.select(queue.c.source, queue.c.wave, sa.func.count())
                    .where(~queue.c.done)
                    .group_by(queue.c.source, queue.c.wave)
                ).all()
            }
        return [{**row._asdict(), "pending": pending.get((row.source, row.wave), 0)} for row in done]

    def dispose(self) -> None:
        self.engine.dispose()
