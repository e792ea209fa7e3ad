"""Envelope v2, a UMS batch: many points of one origin in one Kafka record (docs/envelope-v2.md).

A record is one JSON object:

- ``protocol``: ``type`` (``data_increment_data``) and ``version`` ("MAJOR.MINOR", 2.x);
- ``schema``: the ``namespace`` and the ``fields`` of every tuple, ``ums_id_``, ``ums_ts_``,
  ``ums_op_`` first, then ``point_key`` and ``value``;
- ``batch``: what every point of the record shares (``source``, ``wave``, ``collected_at``) and how
  many points it holds (``points``: a truncated or spliced record is caught);
- ``payload``: series groups ``{metric, tags, tuples}``, each series' identity written once and
  its tuples (JSON arrays in field order) in the order they were read.

Evolution: readers of MAJOR 2 accept any 2.x. A newer minor may add keys to any object and append
fields after ``value`` (its tuples grow by as many elements); it never reorders, removes or
retypes the first five. A 2.0 reader keeps appended tuple fields in the point's ``extras``.

The point contract is v1's: a decoded point is the ``Envelope`` the v1 record of the same point
decodes to (``schema_version`` 1.0), so everything downstream of parsing is the same for both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rtdp_dagster.envelope.keys import series_key
from rtdp_dagster.envelope.schema import OPS, SCHEMA_VERSION, Envelope, EnvelopeError, check_integer_range

PROTOCOL_TYPE = "data_increment_data"
PROTOCOL_MAJOR = 2
PROTOCOL_MINOR = 0
PROTOCOL_VERSION = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"

# (name, type, nullable) of each tuple element, in tuple order. Types are Spark/UMS type names.
FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("ums_id_", "long", False),
    ("ums_ts_", "long", False),
    ("ums_op_", "string", False),
    ("point_key", "string", False),
    ("value", "double", True),
)
FIELD_NAMES = tuple(name for name, _, _ in FIELDS)
_FIELD_LIST = [{"name": name, "type": kind, "nullable": nullable} for name, kind, nullable in FIELDS]

# A defect of the record's structure; one that concerns a single tuple is reported as WRONG_TYPE.
MALFORMED_BATCH = "malformed_batch"


@dataclass(frozen=True, slots=True)
class BatchOrigin:
    """What every point of one record shares: the collector writes one origin per window."""

    namespace: str
    source: str
    wave: int
    collected_at: int


PointTuple = tuple[int, int, str, str, float | None]

# The most bytes a tuple takes besides its point_key: two int64 (20 characters each), the quoted
# op, the quoted key's quotes, the longest shortest-roundtrip float (24), 4 commas, 2 brackets.
TUPLE_BYTES_BESIDES_KEY = 20 + 20 + 3 + 2 + 24 + 4 + 2


def point_tuple(ums_id: int, ums_ts: int, op: str, point_key: str, value: float | None) -> PointTuple:
    """One point's tuple, in ``FIELDS`` order (values are validated finite before they get here)."""
    return (ums_id, ums_ts, op, point_key, value)


def series_identity(metric: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """A series group without its tuples; tags sorted, so a series is always written alike."""
    return {"metric": metric, "tags": dict(sorted(tags.items()))}


def encode_record(origin: BatchOrigin, points: int, groups: Sequence[Mapping[str, Any]]) -> bytes:
    """The record of these series groups (``{"metric", "tags", "tuples"}`` each, in order)."""
    return orjson.dumps(
        {
            "protocol": {"type": PROTOCOL_TYPE, "version": PROTOCOL_VERSION},
            "schema": {"namespace": origin.namespace, "fields": _FIELD_LIST},
            "batch": {
                "source": origin.source,
                "wave": origin.wave,
                "collected_at": origin.collected_at,
                "points": points,
            },
            "payload": groups,
        }
    )


def encode_batch(points: Sequence[Envelope]) -> bytes:
    """One record of these points (no bounds: ``BatchBuilder`` splits a stream of points into records).

    The points must share namespace, source, wave and collected_at; series are grouped in order
    of first appearance, each series' points kept in the given order.
    """
    if not points:
        raise ValueError("a batch holds at least one point")
    first = points[0]
    origin = BatchOrigin(first.namespace, first.source, first.wave, first.collected_at)
    groups: dict[str, dict[str, Any]] = {}
    for point in points:
        if BatchOrigin(point.namespace, point.source, point.wave, point.collected_at) != origin:
            raise ValueError(f"point {point.point_key} does not share the batch's origin {origin}")
        if point.extras:
            raise ValueError(f"point {point.point_key} has fields v2 {PROTOCOL_VERSION} does not carry: {point.extras}")
        group = groups.get(point.series_key)
        if group is None:
            group = groups[point.series_key] = {**series_identity(point.metric, point.tags), "tuples": []}
        group["tuples"].append(point_tuple(point.ums_id_, point.ums_ts_, point.ums_op_, point.point_key, point.value))
    return encode_record(origin, len(points), list(groups.values()))


# -- decoding ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesGroup:
    metric: str
    tags: dict[str, str]
    tuples: list[Any]


@dataclass(frozen=True, slots=True)
class Frame:
    """A record whose structure is valid; its tuples are checked one by one (``points``)."""

    origin: BatchOrigin
    version: str
    # Names of every tuple element: FIELD_NAMES, then the fields a newer minor version appended.
    field_names: tuple[str, ...]
    groups: list[SeriesGroup]

    @property
    def point_count(self) -> int:
        return sum(len(group.tuples) for group in self.groups)


def _object(record: Any, key: str, path: str) -> dict[str, Any]:
    if key not in record:
        raise EnvelopeError("missing_field", f"required field {path}{key!r} is missing")
    value = record[key]
    if not isinstance(value, dict):
        raise EnvelopeError("wrong_type", f"field {path}{key!r} must be an object, got {type(value).__name__}")
    return value


def _typed(record: dict[str, Any], key: str, types: tuple[type, ...], path: str) -> Any:
    if key not in record:
        raise EnvelopeError("missing_field", f"required field {path}{key!r} is missing")
    value = record[key]
    # bool is an int in Python but not in the envelope.
    if isinstance(value, bool) or not isinstance(value, types):
        raise EnvelopeError("wrong_type", f"field {path}{key!r} has type {type(value).__name__}")
    return value


def check_protocol(protocol: dict[str, Any]) -> str:
    """The record's version if this reader can read it; otherwise an EnvelopeError naming why."""
    kind, version = protocol.get("type"), protocol.get("version")
    if kind != PROTOCOL_TYPE:
        raise EnvelopeError("incompatible_schema", f"protocol.type {kind!r} is not {PROTOCOL_TYPE!r}")
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise EnvelopeError("incompatible_schema", f"protocol.version must be 'MAJOR.MINOR', got {version!r}")
    if int(parts[0]) != PROTOCOL_MAJOR:
        raise EnvelopeError(
            "incompatible_schema",
            f"protocol.version {version} is not readable by this consumer (reads {PROTOCOL_MAJOR}.x)",
        )
    assert isinstance(version, str)
    return version


def _field_names(fields: Any) -> tuple[str, ...]:
    if not isinstance(fields, list) or len(fields) < len(FIELDS):
        raise EnvelopeError("incompatible_schema", f"schema.fields must list at least {list(FIELD_NAMES)}")
    names = []
    for index, field in enumerate(fields):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            raise EnvelopeError("wrong_type", f"schema.fields[{index}] must be an object with a 'name'")
        names.append(field["name"])
    for index, (name, kind, _) in enumerate(FIELDS):
        if names[index] != name or fields[index].get("type") != kind:
            raise EnvelopeError(
                "incompatible_schema",
                f"schema.fields[{index}] is {names[index]!r} of type {fields[index].get('type')!r}, "
                f"expected {name!r} of type {kind!r}",
            )
    if len(set(names)) != len(names):
        raise EnvelopeError("incompatible_schema", f"schema.fields names a field twice: {names}")
    return tuple(names)


def _group(raw: Any, index: int) -> SeriesGroup:
    path = f"payload[{index}]."
    if not isinstance(raw, dict):
        raise EnvelopeError("wrong_type", f"payload[{index}] must be an object, got {type(raw).__name__}")
    metric = _typed(raw, "metric", (str,), path)
    tags = _object(raw, "tags", path)
    if not all(isinstance(value, str) for value in tags.values()):
        raise EnvelopeError("wrong_type", f"field {path}'tags' must map strings to strings")
    tuples = _typed(raw, "tuples", (list,), path)
    if not tuples:
        raise EnvelopeError(MALFORMED_BATCH, f"{path}tuples is empty")
    return SeriesGroup(metric, tags, tuples)


def read_frame(payload: bytes | str) -> Frame:
    """Parse a record and check its structure; tuples are checked by ``points``."""
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("invalid_json", str(exc)) from None
    return frame_from_dict(record)


def frame_from_dict(record: Any) -> Frame:
    """``read_frame`` of a record already parsed."""
    if not isinstance(record, dict):
        raise EnvelopeError("not_an_object", f"a UMS batch must be a JSON object, got {type(record).__name__}")
    if "protocol" not in record and "schema_version" in record:
        raise EnvelopeError("incompatible_schema", "a v1 point envelope, not a v2 UMS batch")
    version = check_protocol(_object(record, "protocol", ""))
    schema = _object(record, "schema", "")
    namespace = _typed(schema, "namespace", (str,), "schema.")
    field_names = _field_names(schema.get("fields"))
    batch = _object(record, "batch", "")
    origin = BatchOrigin(
        namespace=namespace,
        source=_typed(batch, "source", (str,), "batch."),
        wave=_typed(batch, "wave", (int,), "batch."),
        collected_at=_typed(batch, "collected_at", (int,), "batch."),
    )
    check_integer_range("wave", origin.wave, " of batch")
    check_integer_range("collected_at", origin.collected_at, " of batch")
    declared = _typed(batch, "points", (int,), "batch.")
    payload_groups = _typed(record, "payload", (list,), "")
    if not payload_groups:
        raise EnvelopeError(MALFORMED_BATCH, "payload holds no series group")
    frame = Frame(origin, version, field_names, [_group(raw, i) for i, raw in enumerate(payload_groups)])
    if frame.point_count != declared:
        raise EnvelopeError(MALFORMED_BATCH, f"batch.points says {declared}, the payload holds {frame.point_count}")
    return frame


def _point(frame: Frame, group: SeriesGroup, series: str, values: Any, path: str) -> Envelope:
    if not isinstance(values, list) or len(values) != len(frame.field_names):
        raise EnvelopeError(
            MALFORMED_BATCH, f"{path} must be an array of the {len(frame.field_names)} fields of schema.fields"
        )
    ums_id, ums_ts, op, point_key, value = values[:5]
    for name, item, types in (
        ("ums_id_", ums_id, (int,)),
        ("ums_ts_", ums_ts, (int,)),
        ("point_key", point_key, (str,)),
        ("value", value, (int, float, type(None))),
    ):
        if isinstance(item, bool) or not isinstance(item, types):
            raise EnvelopeError("wrong_type", f"field {name!r} of {path} has type {type(item).__name__}")
    check_integer_range("ums_id_", ums_id, f" of {path}")
    check_integer_range("ums_ts_", ums_ts, f" of {path}")
    if op not in OPS:
        raise EnvelopeError("wrong_type", f"field 'ums_op_' of {path} must be one of {OPS}, got {op!r}")
    if value is None and op != "d":
        raise EnvelopeError("wrong_type", f"field 'value' of {path} may be null only for a retraction")
    origin = frame.origin
    return Envelope(
        namespace=origin.namespace,
        metric=group.metric,
        tags=group.tags,
        value=None if value is None else float(value),
        ums_ts_=ums_ts,
        point_key=point_key,
        ums_id_=ums_id,
        ums_op_=op,
        wave=origin.wave,
        source=origin.source,
        collected_at=origin.collected_at,
        schema_version=SCHEMA_VERSION,
        extras=dict(zip(frame.field_names[5:], values[5:], strict=True)),
        series=series,
    )


def points(frame: Frame) -> Iterator[Envelope | EnvelopeError]:
    """Every tuple of the frame in record order (its index in the record): a point or why it is not one."""
    for group_index, group in enumerate(frame.groups):
        series = series_key(group.metric, group.tags)
        for tuple_index, values in enumerate(group.tuples):
            try:
                yield _point(frame, group, series, values, f"payload[{group_index}].tuples[{tuple_index}]")
            except EnvelopeError as exc:
                yield exc


def decode_batch(payload: bytes | str) -> list[Envelope]:
    """Every point of a record, strictly: the first defect raises an EnvelopeError naming it."""
    decoded = []
    for point in points(read_frame(payload)):
        if isinstance(point, EnvelopeError):
            raise point
        decoded.append(point)
    return decoded
