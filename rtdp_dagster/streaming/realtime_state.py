"""The realtime dedup state across restarts, rebuilt from bronze.

Bronze holds every accepted record of every committed micro-batch, and the query's checkpoint
says up to which Kafka offsets the batches were committed: those records went through the
realtime half too. Their hashes within the TTL are the state. The watermark's base (the highest
event time seen, each capped by its receive time: ``dedup``) is saved beside the checkpoint after
each batch, with the value before the batch for the case that the batch is replayed. Restored, the
base is capped by the restart's clock: a file or a bronze scan from before the cap (a record
stamped a month ahead) cannot move the watermark past "now" again.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from rtdp_dagster.json_file import replace_json
from rtdp_dagster.master_data.table import read_table
from rtdp_dagster.streaming.dedup import WatermarkDedup
from rtdp_dagster.wall_clock import now_ms

logger = logging.getLogger("rtdp.stream")


def dedup_hash(point_key: str = "point_key", value: str = "value", op: str = "ums_op_") -> Column:
    """What makes a row a duplicate of another, as 64-bit hashes (the same in the stream and here)."""
    return F.xxhash64(point_key, value, op)


def state_file(checkpoint: Path) -> Path:
    return checkpoint.parent / f"{checkpoint.name}.realtime-state.json"


def put_journal_file(checkpoint: Path) -> Path:
    return checkpoint.parent / f"{checkpoint.name}.realtime-put.json"


def mark_put_begun(path: Path, batch_id: int) -> None:
    """Record, before any of its points is put, that this micro-batch's put began.

    A batch whose bronze write fails after its put (a full disk, a killed driver) runs again with
    the same id; the journal tells the writer that the TSDB may already hold its points. When this
    file cannot be written, nothing of the batch has been put yet.
    """
    replace_json(path, {"batch_id": batch_id})


def last_put_begun(path: Path) -> int | None:
    """The micro-batch whose put began last, if the journal says."""
    try:
        return int(json.loads(path.read_text())["batch_id"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:  # unreadable: every batch is then taken as new
        logger.warning("realtime put journal %s not read: %s", path, exc)
        return None


def last_committed(checkpoint: Path) -> tuple[int, str] | None:
    """The last committed micro-batch of a query and its Kafka end offsets (JSON), from its checkpoint."""
    commits = checkpoint / "commits"
    done = [int(name.name) for name in commits.iterdir() if name.name.isdigit()] if commits.is_dir() else []
    if not done:
        return None
    lines = (checkpoint / "offsets" / str(max(done))).read_text().strip().splitlines()
    return (max(done), lines[-1]) if len(lines) >= 3 and lines[-1].startswith("{") else None


def save_max_event(path: Path, batch_id: int, before: int | None, after: int | None, tsdb: dict | None = None) -> None:
    """The batch's watermark base before and after it; ``tsdb``: what the realtime writer carries
    across a restart (``saved_tsdb_state``)."""
    state: dict = {"batch_id": batch_id, "max_event_ms_before": before, "max_event_ms_after": after}
    if tsdb is not None:
        state["tsdb"] = tsdb
    replace_json(path, state)


def saved_tsdb_state(path: Path, window_s: float) -> tuple[AcknowledgedPuts, float | None, float | None]:
    """What the realtime writer saved in the state file (``tsdb``): its acknowledged puts and the
    TSDB start time it read last, with when. Nothing at risk and nothing known when there is none or
    it cannot be read."""
    try:
        saved = json.loads(path.read_text()).get("tsdb") or {}
        known, known_at = (None if saved.get(key) is None else float(saved[key]) for key in ("known", "known_at"))
        return AcknowledgedPuts(window_s, puts=saved.get("acknowledged", [])), known, known_at
    except FileNotFoundError:
        pass
    except (ValueError, TypeError, AttributeError) as exc:
        logger.warning("realtime state %s not read: %s", path, exc)
    return AcknowledgedPuts(window_s), None, None


def max_event_through(path: Path, committed_batch: int) -> tuple[bool, int | None]:
    """(known, value): the highest event time through the committed batch, if the file says."""
    if not path.exists():
        return False, None
    saved = json.loads(path.read_text())
    if saved["batch_id"] <= committed_batch:
        return True, saved["max_event_ms_after"]
    if saved["batch_id"] == committed_batch + 1:  # written, then the batch was not committed
        return True, saved["max_event_ms_before"]
    return False, None


def restore_dedup_state(spark: SparkSession, dedup: WatermarkDedup, checkpoint: Path, bronze_path: str) -> int:
    """Fill dedup from bronze as of the checkpoint's last committed batch; returns the hashes loaded."""
    committed = last_committed(checkpoint)
    bronze = read_table(spark, bronze_path)
    if committed is None or bronze is None:
        return 0
    batch_id, offsets = committed
    ends = [
        (topic, int(partition), int(end))
        for topic, parts in json.loads(offsets).items()
        for partition, end in parts.items()
    ]
    ends_frame = spark.createDataFrame(ends, "kafka_topic string, kafka_partition int, end_offset long")
    processed = bronze.join(F.broadcast(ends_frame), ["kafka_topic", "kafka_partition"]).where(
        F.col("kafka_offset") < F.col("end_offset")
    )
    known, max_event = max_event_through(state_file(checkpoint), batch_id)
    if not known:  # a checkpoint from before the state file: one scan of bronze, event times capped
        # by when each row landed (bronze keeps no receive time; the landing is at most a batch later)
        max_event = processed.agg(F.max(F.least("ums_ts_", "ingested_at"))).first()[0]  # type: ignore[index]
    if max_event is None:
        return 0
    max_event = min(int(max_event), now_ms())
    watermark = max_event - dedup.ttl_ms
    recent = processed.where(
        (F.col("event_date") >= F.to_date(F.timestamp_millis(F.lit(watermark)))) & (F.col("ums_ts_") >= watermark)
    )
    table = recent.select(dedup_hash().alias("hash"), "ums_ts_").toArrow()
    dedup.restore(table.column("hash").to_numpy(), table.column("ums_ts_").to_numpy(), max_event)
    logger.info(
        "realtime dedup state: %d point(s) from bronze up to batch %d, watermark %d",
        table.num_rows,
        batch_id,
        watermark,
    )
    return table.num_rows


class AcknowledgedPuts:
    """The puts the realtime TSDB acknowledged lately, for the repair of an outage.

    VictoriaMetrics keeps what it accepted in memory for up to ``-inmemoryDataFlushInterval`` (5 s)
    before it is on disk: killed in that time, it loses points it answered 204 for. When the stream
    notices an outage, ``at_risk`` gives the event-time range and count of what it acknowledged
    within ``window_s`` before the kill, recorded for repair with the failure (the repair puts back
    only what the TSDB does not hold, so nothing is written twice).

    The kill itself is never seen, only bounded: it came after the last put acknowledged before a
    failing one, or after the last look that still read the TSDB's old start time. So the window
    reaches back from those instants, not from when the outage was noticed, which can be any number
    of seconds later (a slow micro-batch, no data for a while, a restart of the stream itself).
    Times are Unix seconds, so the puts can be saved and carried across a restart of the stream.
    """

    def __init__(self, window_s: float, keep_s: float = 600.0, puts: Iterable[Sequence[float]] = ()) -> None:
        self.window_s, self.keep_s = window_s, keep_s
        self._puts: collections.deque[tuple[float, int, int, int]] = collections.deque(
            (float(at), int(low), int(high), int(points)) for at, low, high, points in puts
        )

    def add(self, at: float, min_ts: int, max_ts: int, points: int) -> None:
        """A batch's acknowledged puts at time ``at``: their event-time range and count."""
        self._puts.append((at, min_ts, max_ts, points))
        # Kept long enough for a restart noticed late: the look that read the old start time may be
        # several batches back. One entry per micro-batch with data.
        while at - self._puts[0][0] > self.keep_s:
            self._puts.popleft()

    def at_risk(self, since: float | None = None) -> tuple[int, int, int] | None:
        """(min ts, max ts, points) acknowledged at or after ``since``, once: None again until the next
        ``add`` (the later failures of one outage find nothing new at risk).

        By default ``since`` is the window before the last acknowledgement: a put that fails now
        means a kill after that one, however long ago it was."""
        if since is None:
            since = self._puts[-1][0] - self.window_s if self._puts else 0.0
        recent = [put for put in self._puts if put[0] >= since]
        self._puts.clear()
        if not recent:
            return None
        return min(put[1] for put in recent), max(put[2] for put in recent), sum(put[3] for put in recent)

    def saved(self) -> list[list[float]]:
        """The puts remembered, as JSON can hold them (``puts`` of a new instance takes them back)."""
        return [list(put) for put in self._puts]
