"""`python -m bench.load_producer`: envelopes onto Kafka at a steady rate, cheaply enough to measure a stream.

kafka-python costs ~36 us of CPU per record (measured here), so producing 50k points/s from it
would take most of this machine's two cores from the stream under test. This load generator uses
librdkafka (confluent-kafka) and fills a byte template of the platform's own encoding instead of
building an ``Envelope`` per point: ~5 us per record. It checks at start that the template gives
exactly what ``encode`` gives, so the stream sees collector-shaped records (its native path).

Envelope v2 (the default, ``--envelope-version 2``): the points of each tick are packed by the
collectors' own ``BatchBuilder`` into UMS batch records within the configured bounds
(``collection.ums_batch``), one partition's series per record, each record sent to that partition
under its routing key, as ``Publisher.send_batch`` does; every tick flushes its records (a tick,
50 ms, is shorter than the collectors' linger). At start the records are checked against
``ums_batch.encode_batch`` of the same points. ``--envelope-version 1`` sends one record per point.

The rate can change while it runs: the bench writes the wanted rate to ``--rate-file``. Progress
(points sent and acknowledged, delivery errors, CPU seconds) goes to ``--progress-file`` every second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from rtdp_dagster.collection.partitioning import partition_index, routing_key
from rtdp_dagster.envelope.batch_builder import BatchBuilder, ClosedBatch, UmsBatchBounds, slot_of
from rtdp_dagster.envelope.keys import point_key_of_series, series_key
from rtdp_dagster.envelope.schema import Envelope, encode
from rtdp_dagster.envelope.ums_batch import BatchOrigin, decode_batch, encode_batch

HOSTS = 1000
TICK_S = 0.05
_TS, _KEY, _HOST, _VALUE = "1111111111111", "k" * 32, "hSENTINEL", 123456.5


NAMESPACE, SOURCE, WAVE = "synthetic.bench.fleet.metrics.v1.0.0", "bench", 1


def envelope(
    metric: str, host: str, ts: int, value: float, key: str | None = None, collected_at: int | None = None
) -> Envelope:
    tags = {"host": host}
    key = key if key is not None else point_key_of_series(series_key(metric, tags), ts)
    return Envelope(
        namespace=NAMESPACE,
        metric=metric,
        tags=tags,
        value=value,
        ums_ts_=ts,
        point_key=key,
        ums_id_=ts,
        ums_op_="i",
        wave=WAVE,
        source=SOURCE,
        collected_at=ts if collected_at is None else collected_at,
    )


class Template:
    """The encoded envelope with holes for host, time, key and value (values: whole numbers < 100)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        sample = encode(envelope(metric, _HOST, int(_TS), _VALUE, key=_KEY)).decode()
        # %-format by name: the sentinels' places in the platform's own encoding.
        holes = {_HOST: "%(host)s", _TS: "%(ts)d", _KEY: "%(key)s", repr(_VALUE): "%(value)r"}
        text = sample.replace("%", "%%")
        for sentinel, hole in holes.items():
            if sentinel not in text:
                raise RuntimeError(f"the envelope's encoding changed: {sentinel!r} not found in {sample}")
            text = text.replace(sentinel, hole)
        self.text = text
        self.hosts = [f"h{n:04d}" for n in range(HOSTS)]
        self.series = [f"{metric}|host={host}" for host in self.hosts]
        self.keys = [series.encode() for series in self.series]

    def record(self, i: int, ts: int) -> tuple[bytes, bytes]:
        """The (key, value) of point i: host i mod HOSTS, value i mod 100."""
        n = i % HOSTS
        key = point_key_of_series(self.series[n], ts)
        fields = {"host": self.hosts[n], "ts": ts, "key": key, "value": float(i % 100)}
        return self.keys[n], (self.text % fields).encode()

    def check(self, samples: int = 1000) -> None:
        """Raise unless the template encodes points exactly as the platform's ``encode`` does."""
        now = int(time.time() * 1000)
        for i in range(samples):
            ts = now + i
            expected = encode(envelope(self.metric, f"h{i % HOSTS:04d}", ts, float(i % 100)))
            if self.record(i, ts)[1] != expected:
                raise RuntimeError(f"template gives {self.record(i, ts)[1]!r}, encode gives {expected!r}")


class BatchRecords:
    """Envelope v2: the points of a tick as UMS batch records, packed and routed as collectors do.

    Point j of a tick at ``now_ms`` is v1's point: host j mod HOSTS, time ``now_ms + j // HOSTS``,
    value j mod 100; the record's ``collected_at`` is ``now_ms`` (one origin per tick, as one per
    window). A series' partition is the default partitioner's (``partition_index`` of its series key
    over the sorted partitions), so a series stays in one partition and its points in order.
    """

    def __init__(
        self, metric: str, partitions: list[int], bounds: UmsBatchBounds, host_names: list[str] | None = None
    ) -> None:
        self.metric, self.bounds = metric, bounds
        self.host_names = host_names or [f"h{n:04d}" for n in range(HOSTS)]
        self.hosts = len(self.host_names)
        ids = sorted(partitions)
        self.routing_keys = {ids[index]: routing_key(index, len(ids)) for index in range(len(ids))}
        self.slots = []
        for host in self.host_names:
            tags = {"host": host}
            series = series_key(metric, tags)
            self.slots.append(slot_of(series, ids[partition_index(series.encode(), len(ids))], metric, tags))

    def records(self, first: int, count: int, now_ms: int) -> list[ClosedBatch]:
        """The records of points first .. first + count - 1 (``first`` sets their hosts and values)."""
        closed: list[ClosedBatch] = []
        origin = BatchOrigin(NAMESPACE, SOURCE, WAVE, now_ms)
        # No linger inside a tick: the tick's end flushes every record (as a window's end does).
        builder = BatchBuilder(origin, self.bounds, closed.append, clock_s=lambda: 0.0)
        add, slots, hosts, key_of = builder.add, self.slots, self.hosts, point_key_of_series  # once per tick
        for j in range(count):
            i = first + j
            slot, ts = slots[i % hosts], now_ms + j // hosts
            add(slot, (ts, ts, "i", key_of(slot.series, ts), float(i % 100)))
        builder.flush()
        return closed

    def expected_points(self, first: int, count: int, now_ms: int) -> list[Envelope]:
        """The same points as ``records`` packs, built as envelopes (what ``check`` compares with)."""
        return [
            envelope(
                self.metric,
                self.host_names[(first + j) % self.hosts],
                now_ms + j // self.hosts,
                float((first + j) % 100),
                collected_at=now_ms,
            )
            for j in range(count)
        ]

    def check(self, count: int = 5000) -> None:
        """Raise unless the records are ``encode_batch`` of their points, within the bounds, every
        point of the tick exactly once, each series in its own partition, its points in order."""
        now, first = int(time.time() * 1000), 12_345
        records = self.records(first, count, now)
        partition_of = {slot.series: slot.partition for slot in self.slots}
        decoded: dict[str, list[Envelope]] = {}
        for record in records:
            points = decode_batch(record.value)
            if encode_batch(points) != record.value:
                raise RuntimeError(f"a record is not the platform's encoding of its points: {record.value[:300]!r}")
            if len(points) != record.points or len(points) > self.bounds.max_points:
                raise RuntimeError(f"a record of {len(points)} points (said {record.points}), bounds {self.bounds}")
            if len(record.value) > self.bounds.max_bytes:
                raise RuntimeError(f"a record of {len(record.value)} bytes, bounds {self.bounds}")
            for point in points:
                if partition_of[point.series_key] != record.partition:
                    raise RuntimeError(f"{point.series_key} sent to partition {record.partition}")
                decoded.setdefault(point.series_key, []).append(point)
        expected: dict[str, list[Envelope]] = {}
        for point in self.expected_points(first, count, now):
            expected.setdefault(point.series_key, []).append(point)
        if decoded != expected:
            raise RuntimeError("the records do not hold the tick's points exactly once, in order per series")


class Progress:
    """Points handed to librdkafka, still unacknowledged, and failed (reported by error callbacks)."""

    def __init__(self) -> None:
        self.sent = self.pending = self.errors = self.records = self.records_acked = 0
        self.first_error: str | None = None

    def delivered(self, error, _message) -> None:  # v1, errors only: called from poll/flush, in this thread
        if error is not None:
            self.errors += 1
            self.first_error = self.first_error or str(error)

    def batch_delivered(self, points: int):
        """v2: a callback per record (cheap at hundreds of points a record) that counts its points."""

        def delivered(error, _message) -> None:
            self.pending -= points
            if error is None:
                self.records_acked += 1
            else:
                self.errors += points
                self.first_error = self.first_error or str(error)

        return delivered

    def write(self, path: Path, rate: int, done: bool = False) -> None:
        acked = self.sent - self.pending - self.errors
        cpu = os.times()
        state = {
            "sent": self.sent,
            "acked": acked,
            "errors": self.errors,
            "first_error": self.first_error,
            "rate": rate,
            "records": self.records,
            "records_acked": self.records_acked,
            "cpu_s": cpu.user + cpu.system,
            "at": time.time(),
            "done": done,
        }
        path.with_suffix(".tmp").write_text(json.dumps(state))
        path.with_suffix(".tmp").replace(path)


def _rate(path: Path, current: int) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return current


def _partitions(producer: Producer, topic: str, timeout_s: float = 30.0) -> list[int]:
    """The topic's partition ids (records are routed to them as collectors route theirs)."""
    deadline = time.monotonic() + timeout_s
    while True:
        partitions = list(producer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
        if partitions:
            return partitions
        if time.monotonic() >= deadline:
            raise RuntimeError(f"topic {topic} has no partitions")
        time.sleep(0.5)


def _producer(args: argparse.Namespace, progress: Progress) -> Producer:
    config = {
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": args.compression,
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 2_000_000,
        "message.timeout.ms": 60_000,
    }
    if args.envelope_version == 1:
        # A Python callback per acknowledged record would cost more than producing it.
        config.update({"delivery.report.only.error": True, "on_delivery": progress.delivered})
    else:
        config.update({"message.max.bytes": 2 * args.max_bytes, "batch.size": 4 * args.max_bytes})
    return Producer(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_producer", description="Produce envelopes onto Kafka at a steady rate."
    )
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--metric", required=True, help="metric name of every point")
    parser.add_argument("--rate-file", type=Path, required=True, help="points/s wanted (read every tick)")
    parser.add_argument("--progress-file", type=Path, required=True)
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--envelope-version", type=int, choices=(1, 2), default=2)
    bounds = UmsBatchBounds()
    parser.add_argument("--max-points", type=int, default=bounds.max_points, help="v2: points per record at most")
    parser.add_argument("--max-bytes", type=int, default=bounds.max_bytes, help="v2: bytes per record at most")
    args = parser.parse_args(argv)
    progress, rate = Progress(), 0
    producer = _producer(args, progress)
    template, batches = Template(args.metric), None
    if args.envelope_version == 1:
        template.check()
    else:
        bounds = UmsBatchBounds(max_points=args.max_points, max_bytes=args.max_bytes, linger_ms=TICK_S * 1000)
        batches = BatchRecords(args.metric, _partitions(producer, args.topic), bounds)
        batches.check()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    i, next_tick, last_report = 0, time.perf_counter(), 0.0
    while not stop.is_set():
        rate = _rate(args.rate_file, rate)
        # Points of one tick share its millisecond clock plus their index: unique per host and time.
        now_ms = int(time.time() * 1000)
        count = int(rate * TICK_S)
        if batches is None:
            for n in range(count):
                key, value = template.record(i, now_ms + n // HOSTS)
                producer.produce(args.topic, value, key)
                i += 1
            progress.sent, progress.pending = i, len(producer)
        elif count:
            for record in batches.records(i, count, now_ms):
                progress.pending += record.points
                progress.records += 1
                delivered = progress.batch_delivered(record.points)
                key = batches.routing_keys[record.partition]
                producer.produce(args.topic, record.value, key, partition=record.partition, on_delivery=delivered)
            i += count
            progress.sent = i
        producer.poll(0)
        if time.perf_counter() - last_report >= 1.0:
            progress.write(args.progress_file, rate)
            last_report = time.perf_counter()
        next_tick += TICK_S
        stop.wait(max(0.0, next_tick - time.perf_counter()))
    producer.flush(60)
    if batches is None:
        progress.pending = len(producer)
    progress.write(args.progress_file, rate, done=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
