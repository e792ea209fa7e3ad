"""Envelope v2 records for the stream's tests: good batches and every kind of broken one."""

from __future__ import annotations

import dataclasses
import json

from rtdp_dagster.envelope.keys import point_key
from rtdp_dagster.envelope.schema import Envelope
from rtdp_dagster.envelope.ums_batch import encode_batch
from rtdp_dagster.streaming.ums_batch_parse import MAX_RECORD_BYTES

DAY_MS = 86_400_000


def point(metric: str, host: str, ts: int, value: float | None, *, version: int, op: str = "i") -> Envelope:
    tags = {"host": host, "site": "site01"}
    return Envelope(
        namespace="synthetic.local.fleet.metrics.v1.0.0",
        metric=metric,
        tags=tags,
        value=value,
        ums_ts_=ts,
        point_key=point_key(metric, tags, ts),
        ums_id_=version,
        ums_op_=op,
        wave=1,
        source="v2test",
        collected_at=ts + 1000,
    )


def same_origin(points: list[Envelope], collected_at: int) -> list[Envelope]:
    """The points as one collector window writes them: one collection time."""
    return [dataclasses.replace(p, collected_at=collected_at) for p in points]


def as_dict(points: list[Envelope]) -> dict:
    return json.loads(encode_batch(points))


def compact(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def with_tuple(record: dict, group: int, index: int, values: list) -> bytes:
    """The record with one tuple replaced."""
    changed = json.loads(json.dumps(record))
    changed["payload"][group]["tuples"][index] = values
    return compact(changed)


def broken_frames(record: dict) -> dict[str, tuple[bytes, str]]:
    """A record's frame broken in each way a reader must refuse whole: name → (payload, reason)."""
    text = compact(record)
    renamed = json.loads(text)
    renamed["schema"]["fields"][4]["name"] = "reading"
    empty = json.loads(text)
    empty["payload"], empty["batch"]["points"] = [], 0
    version = json.loads(text)
    version["protocol"]["version"] = "3.0"
    spliced = json.loads(text)
    spliced["batch"]["points"] += 1
    big = json.loads(text)
    big["padding"] = "x" * (MAX_RECORD_BYTES + 1)
    return {
        "truncated": (text[: len(text) // 2], "invalid_json"),
        "unknown field": (compact(renamed), "incompatible_schema"),
        "empty payload": (compact(empty), "malformed_batch"),
        "incompatible version": (compact(version), "incompatible_schema"),
        "points count wrong": (compact(spliced), "malformed_batch"),
        "oversized": (compact(big), "oversize_batch"),
    }
