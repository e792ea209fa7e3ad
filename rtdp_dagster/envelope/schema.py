"""The envelope: fields, JSON encoding, decoding with schema evolution, and its JSON Schema.

Evolution rules (``schema_version`` is "MAJOR.MINOR"):
- a newer MINOR may add optional fields or widen a type (an integer value where a float was);
  readers of the same MAJOR decode it and keep unknown fields in ``extras``;
- a different MAJOR, a missing required field or a narrowed/changed type is incompatible and
  refused with an EnvelopeError that names the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from rtdp_dagster.envelope.keys import series_key

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 0
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
OPS = ("i", "u", "d")


class EnvelopeError(ValueError):
    """A payload that is not a compatible envelope; the message names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Envelope:
    namespace: str
    metric: str
    tags: dict[str, str]
    # None only for a retraction (ums_op_ = "d").
    value: float | None
    ums_ts_: int
    point_key: str
    ums_id_: int
    ums_op_: str
    wave: int
    source: str
    collected_at: int
    schema_version: str = SCHEMA_VERSION
    # Fields of a newer minor version, passed through untouched.
    extras: dict[str, Any] = field(default_factory=dict, compare=False)
    # The series key (Kafka message key), when already computed; not part of the JSON.
    series: str | None = field(default=None, compare=False, repr=False)

    @property
    def series_key(self) -> str:
        return self.series if self.series is not None else series_key(self.metric, self.tags)

    def to_dict(self) -> dict[str, Any]:
        record = {
            "namespace": self.namespace,
            "metric": self.metric,
            "tags": self.tags,
            "value": self.value,
            "ums_ts_": self.ums_ts_,
            "point_key": self.point_key,
            "ums_id_": self.ums_id_,
            "ums_op_": self.ums_op_,
            "wave": self.wave,
            "source": self.source,
            "collected_at": self.collected_at,
            "schema_version": self.schema_version,
        }
        record.update(self.extras)
        return record


def encode(envelope: Envelope) -> bytes:
    # Values are validated finite before an envelope exists; orjson is ~10x faster than json here.
    return orjson.dumps(envelope.to_dict())


# (field, accepted JSON types, required). Integers are accepted where numbers are: widening.
_FIELDS: tuple[tuple[str, tuple[type, ...], bool], ...] = (
    ("namespace", (str,), True),
    ("metric", (str,), True),
    ("tags", (dict,), True),
    ("value", (int, float, type(None)), True),
    ("ums_ts_", (int,), True),
    ("point_key", (str,), True),
    ("ums_id_", (int,), True),
    ("ums_op_", (str,), True),
    ("wave", (int,), True),
    ("source", (str,), True),
    ("collected_at", (int,), True),
    ("schema_version", (str,), True),
)
_KNOWN = {name for name, _, _ in _FIELDS}
# The integer fields' ranges: the columns that hold them (bronze, silver) are 64-bit, wave 32-bit.
INTEGER_BITS = {"ums_ts_": 64, "ums_id_": 64, "wave": 32, "collected_at": 64}


def check_integer_range(name: str, value: int, where: str = "") -> None:
    """An integer field outside its column's signed range is refused, not stored as null."""
    bits = INTEGER_BITS[name]
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise EnvelopeError("wrong_type", f"field {name!r}{where} is {value}, outside the signed {bits}-bit range")


def _check_version(version: Any) -> None:
    if not isinstance(version, str) or version.count(".") != 1:
        raise EnvelopeError("incompatible_schema", f"schema_version must be 'MAJOR.MINOR', got {version!r}")
    major, minor = version.split(".")
    if not (major.isdigit() and minor.isdigit()):
        raise EnvelopeError("incompatible_schema", f"schema_version must be 'MAJOR.MINOR', got {version!r}")
    if int(major) != SCHEMA_MAJOR:
        raise EnvelopeError(
            "incompatible_schema",
            f"schema_version {version} is not readable by this consumer (reads {SCHEMA_MAJOR}.x)",
        )


def from_dict(record: Any) -> Envelope:
    if not isinstance(record, dict):
        raise EnvelopeError("not_an_object", f"envelope must be a JSON object, got {type(record).__name__}")
    _check_version(record.get("schema_version"))
    for name, types, required in _FIELDS:
        if name not in record:
            if required:
                raise EnvelopeError("missing_field", f"required field {name!r} is missing")
            continue
        value = record[name]
        # bool is an int in Python but not in the envelope.
        if isinstance(value, bool) or not isinstance(value, types):
            raise EnvelopeError("wrong_type", f"field {name!r} has type {type(value).__name__}")
        if name in INTEGER_BITS:
            check_integer_range(name, value)
    tags = record["tags"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise EnvelopeError("wrong_type", "field 'tags' must map strings to strings")
    if record["ums_op_"] not in OPS:
        raise EnvelopeError("wrong_type", f"field 'ums_op_' must be one of {OPS}, got {record['ums_op_']!r}")
    value = record["value"]
    if value is None and record["ums_op_"] != "d":
        raise EnvelopeError("wrong_type", "field 'value' may be null only for a retraction")
    return Envelope(
        namespace=record["namespace"],
        metric=record["metric"],
        tags=tags,
        value=None if value is None else float(value),
        ums_ts_=record["ums_ts_"],
        point_key=record["point_key"],
        ums_id_=record["ums_id_"],
        ums_op_=record["ums_op_"],
        wave=record["wave"],
        source=record["source"],
        collected_at=record["collected_at"],
        schema_version=record["schema_version"],
        extras={key: value for key, value in record.items() if key not in _KNOWN},
    )


def decode(payload: bytes | str) -> Envelope:
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", str(exc)) from None
    return from_dict(record)


def json_schema() -> dict[str, Any]:
    """The published JSON Schema (docs/envelope.schema.json is generated from this)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://rtdp.local/schemas/envelope-1.json",
        "title": "rtdp point envelope",
        "description": "One data point on Kafka. Readers of MAJOR version 1 accept any 1.x: newer minor versions "
        "only add optional fields or widen types.",
        "type": "object",
        "required": [name for name, _, required in _FIELDS if required],
        "additionalProperties": True,
        "properties": {
            "namespace": {
                "type": "string",
                "description": "datastore.instance.database.table.version.dbpartition.tablepartition",
                "pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){6}$",
            },
            "metric": {"type": "string", "pattern": r"^[A-Za-z0-9._/-]+$"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "value": {"type": ["number", "null"], "description": "null only for a retraction"},
            "ums_ts_": {"type": "integer", "description": "event time, epoch milliseconds"},
            "point_key": {"type": "string", "description": "hash of (metric, sorted tags, ums_ts_)"},
            "ums_id_": {"type": "integer", "description": "version of the point; a later correction wins"},
            "ums_op_": {"enum": list(OPS), "description": "insert, correction, retraction"},
            "wave": {"type": "integer", "minimum": 0, "description": "collection wave (0: replay)"},
            "source": {"type": "string"},
            "collected_at": {"type": "integer", "description": "collection time, epoch milliseconds"},
            "schema_version": {"type": "string", "pattern": r"^1\.[0-9]+$"},
        },
    }


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
