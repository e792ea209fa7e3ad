"""`python -m bench.load_producer`: envelopes onto Kafka at a steady rate, cheaply enough to measure a stream.

kafka-python costs ~36 us of CPU per record (measured here), so producing 50k points/s from it
would take most of this machine's two cores from the stream under test. This load generator uses
librdkafka (confluent-kafka) and fills a byte template of the platform's own encoding instead of
building an ``Envelope`` per point: ~5 us per record. It checks at start that the template gives
exactly what ``encode`` gives, so the stream sees collector-shaped records (its native path).

The rate can change while it runs: the bench writes the wanted rate to ``--rate-file``. Progress
(points sent and acknowledged, delivery errors) goes to ``--progress-file`` every second.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from rtdp_dagster.envelope.keys import point_key_of_series, series_key
from rtdp_dagster.envelope.schema import Envelope, encode

HOSTS = 1000
TICK_S = 0.05
_TS, _KEY, _HOST, _VALUE = "1111111111111", "k" * 32, "hSENTINEL", 123456.5


def envelope(metric: str, host: str, ts: int, value: float, key: str | None = None) -> Envelope:
    tags = {"host": host}
    key = key if key is not None else point_key_of_series(series_key(metric, tags), ts)
    return Envelope(namespace="synthetic.bench.fleet.metrics.v1.0.0", metric=metric, tags=tags, value=value,
                    ums_ts_=ts, point_key=key, ums_id_=ts, ums_op_="i", wave=1, source="bench",
                    collected_at=ts)  # fmt: skip


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


class Progress:
    """Points handed to librdkafka, still unacknowledged, and failed (reported by error callbacks)."""

    def __init__(self) -> None:
        self.sent = self.pending = self.errors = 0
        self.first_error: str | None = None

    def delivered(self, error, _message) -> None:  # called from poll/flush, in this thread
        if error is not None:
            self.errors += 1
            self.first_error = self.first_error or str(error)

    def write(self, path: Path, rate: int, done: bool = False) -> None:
        acked = self.sent - self.pending - self.errors
        state = {"sent": self.sent, "acked": acked, "errors": self.errors, "first_error": self.first_error,
                 "rate": rate, "at": time.time(), "done": done}  # fmt: skip
        path.with_suffix(".tmp").write_text(json.dumps(state))
        path.with_suffix(".tmp").replace(path)


def _rate(path: Path, current: int) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return current


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
    args = parser.parse_args(argv)
    template = Template(args.metric)
    template.check()
    progress, rate = Progress(), 0
    producer = Producer({
        "bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
        "compression.type": args.compression, "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 2_000_000, "message.timeout.ms": 60_000,
        # A Python callback per acknowledged record would cost more than producing it.
        "delivery.report.only.error": True, "on_delivery": progress.delivered,
    })  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    i, next_tick, last_report = 0, time.perf_counter(), 0.0
    while not stop.is_set():
        rate = _rate(args.rate_file, rate)
        # Points of one tick share its millisecond clock plus their index: unique per host and time.
        now_ms = int(time.time() * 1000)
        for n in range(int(rate * TICK_S)):
            key, value = template.record(i, now_ms + n // HOSTS)
            producer.produce(args.topic, value, key)
            i += 1
        producer.poll(0)
        progress.sent, progress.pending = i, len(producer)
        if time.perf_counter() - last_report >= 1.0:
            progress.write(args.progress_file, rate)
            last_report = time.perf_counter()
        next_tick += TICK_S
        stop.wait(max(0.0, next_tick - time.perf_counter()))
    producer.flush(60)
    progress.pending = len(producer)
    progress.write(args.progress_file, rate, done=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
