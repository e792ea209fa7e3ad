"""Dedup within the watermark for the realtime TSDB: state with a TTL, held by the stream's driver.

Spark's ``dropDuplicatesWithinWatermark`` drops rows, so it needs a query of its own beside the
one that lands every record in bronze: Kafka read and every record parsed twice on the same cores
(measured: the two queries together drained 6-7k points/s, one alone ~30k). This state lets one
query do both.

- A duplicate is a row with the same (point_key, value, op) as an earlier one; a correction has
  another value and is not one. Rows are compared by a 64-bit hash of those three, computed in the
  JVM (about 1e-8 odds of a collision per minute of 600k points).
- The watermark is the highest event time of earlier micro-batches minus the TTL, where each row's
  event time counts at most up to when it was received (``received_ms``, by a clock its producer
  does not control: ``clock``). A row behind it is late for realtime: counted, not written (it
  still reaches bronze).
- Why capped by the receive time: an event time is the producer's word. Uncapped, one record
  stamped a month ahead moved the watermark a month ahead and every later point of every series
  was "late". Capped, no record moves it past "now", which on-time traffic reaches anyway; the
  state stays one number with exact expiry. (A watermark per series would hold millions of numbers
  and still silence the skewed series itself; a quantile of event times would not be exact and a
  burst of skewed records would still move it.) The base restored after a restart is capped by
  the restart's clock too (``realtime_state``).
- point_key includes the event time, so a duplicate has its original's event time. State is kept
  per event-time minute and a minute is dropped whole once the watermark has passed its end: no
  row it could match can arrive any more, so expiry is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUCKET_MS = 60_000


@dataclass(frozen=True)
class Admission:
    keep: np.ndarray  # one bool per row: on time and not seen before
    late: int
    duplicates: int


class WatermarkDedup:
    def __init__(self, ttl_ms: int) -> None:
        self.ttl_ms = ttl_ms
        self.max_event_ms: int | None = None
        # Event-time minute -> sorted, unique hashes seen in it.
        self._seen: dict[int, np.ndarray] = {}

    @property
    def watermark_ms(self) -> int | None:
        return None if self.max_event_ms is None else self.max_event_ms - self.ttl_ms

    @property
    def size(self) -> int:
        return sum(len(hashes) for hashes in self._seen.values())

    def admit(self, hashes: np.ndarray, event_ms: np.ndarray, received_ms: np.ndarray | None = None) -> Admission:
        """Which rows of one micro-batch go on (the first of each hash, not late), then remember them.

        hashes, event_ms, received_ms: int64 arrays of equal length, in the order the rows were read;
        received_ms caps how far each row moves the watermark (None: not capped).
        """
        watermark = self.watermark_ms
        on_time = np.ones(len(hashes), dtype=bool) if watermark is None else event_ms >= watermark
        candidates = np.flatnonzero(on_time)
        _, first = np.unique(hashes[candidates], return_index=True)  # first occurrence inside the batch
        candidates = candidates[first]
        keep = np.zeros(len(hashes), dtype=bool)
        keep[candidates[self._remember(hashes[candidates], event_ms[candidates])]] = True
        if len(event_ms):
            capped = event_ms if received_ms is None else np.minimum(event_ms, received_ms)
            self._advance(int(capped.max()))
        late = len(hashes) - int(on_time.sum())
        return Admission(keep, late, int(on_time.sum()) - int(keep.sum()))

    def restore(self, hashes: np.ndarray, event_ms: np.ndarray, max_event_ms: int | None) -> None:
        """State after a restart: the rows already written (within the TTL) and the watermark's base."""
        if max_event_ms is not None:
            self._advance(max_event_ms)
        watermark = self.watermark_ms
        kept = np.ones(len(hashes), dtype=bool) if watermark is None else event_ms >= watermark
        self._remember(hashes[kept], event_ms[kept])

    def _remember(self, hashes: np.ndarray, event_ms: np.ndarray) -> np.ndarray:
        """Adds unseen hashes; returns which of the given (unique) hashes were new."""
        new = np.ones(len(hashes), dtype=bool)
        buckets = event_ms // BUCKET_MS
        for bucket in np.unique(buckets):
            rows = np.flatnonzero(buckets == bucket)
            incoming = hashes[rows]
            seen = self._seen.get(int(bucket))
            if seen is not None and len(seen):
                at = np.minimum(np.searchsorted(seen, incoming), len(seen) - 1)
                new[rows] = seen[at] != incoming
                self._seen[int(bucket)] = np.union1d(seen, incoming)
            else:
                self._seen[int(bucket)] = np.unique(incoming)
        return new

    def _advance(self, event_ms: int) -> None:
        self.max_event_ms = event_ms if self.max_event_ms is None else max(self.max_event_ms, event_ms)
        watermark = self.max_event_ms - self.ttl_ms
        for bucket in [bucket for bucket in self._seen if (bucket + 1) * BUCKET_MS <= watermark]:
            del self._seen[bucket]
