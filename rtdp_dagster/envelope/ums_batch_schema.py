"""The published JSON Schema of envelope v2 (docs/envelope-v2.schema.json is generated from this).

Regenerate: ``python -m rtdp_dagster.envelope.ums_batch_schema > docs/envelope-v2.schema.json``.
"""

from __future__ import annotations

import json
from typing import Any

from rtdp_dagster.envelope.schema import OPS
from rtdp_dagster.envelope.ums_batch import FIELDS, PROTOCOL_MAJOR, PROTOCOL_TYPE

_JSON_TYPES = {"long": {"type": "integer"}, "string": {"type": "string"}, "double": {"type": "number"}}
_FIELD_NOTES = {
    "ums_id_": "version of the point; a later correction wins",
    "ums_ts_": "event time, epoch milliseconds",
    "ums_op_": "insert, correction, retraction",
    "point_key": "hash of (metric, sorted tags, ums_ts_)",
    "value": "null only for a retraction",
}


def _tuple_item(name: str, kind: str, nullable: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"enum": list(OPS)} if name == "ums_op_" else dict(_JSON_TYPES[kind])
    if nullable:
        item["type"] = [item["type"], "null"]
    return {**item, "description": f"{name}: {_FIELD_NOTES[name]}"}


def json_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://rtdp.local/schemas/envelope-{PROTOCOL_MAJOR}.json",
        "title": "rtdp UMS batch (envelope v2)",
        "description": "Many points of one origin in one Kafka record, series identity written once per series group. "
        f"Readers of protocol MAJOR {PROTOCOL_MAJOR} accept any {PROTOCOL_MAJOR}.x: newer minor versions only add keys "
        "and append fields after the first five. All series of a record belong to the Kafka partition it is in.",
        "type": "object",
        "required": ["protocol", "schema", "batch", "payload"],
        "additionalProperties": True,
        "properties": {
            "protocol": {
                "type": "object",
                "required": ["type", "version"],
                "properties": {
                    "type": {"const": PROTOCOL_TYPE},
                    "version": {"type": "string", "pattern": rf"^{PROTOCOL_MAJOR}\.[0-9]+$"},
                },
            },
            "schema": {
                "type": "object",
                "required": ["namespace", "fields"],
                "properties": {
                    "namespace": {
                        "type": "string",
                        "description": "datastore.instance.database.table.version.dbpartition.tablepartition",
                        "pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){6}$",
                    },
                    "fields": {
                        "type": "array",
                        "description": "The elements of every tuple, in order; newer minor versions append fields.",
                        "minItems": len(FIELDS),
                        "prefixItems": [
                            {
                                "type": "object",
                                "required": ["name", "type"],
                                "properties": {
                                    "name": {"const": name},
                                    "type": {"const": kind},
                                    "nullable": {"const": nullable},
                                },
                            }
                            for name, kind, nullable in FIELDS
                        ],
                        "items": {
                            "type": "object",
                            "required": ["name", "type"],
                            "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                        },
                    },
                },
            },
            "batch": {
                "type": "object",
                "required": ["source", "wave", "collected_at", "points"],
                "properties": {
                    "source": {"type": "string"},
                    "wave": {"type": "integer", "minimum": 0, "description": "collection wave (0: replay)"},
                    "collected_at": {"type": "integer", "description": "collection time, epoch milliseconds"},
                    "points": {"type": "integer", "minimum": 1, "description": "tuples in the payload, all groups"},
                },
            },
            "payload": {
                "type": "array",
                "minItems": 1,
                "description": "Series groups; a series appears once per record, its tuples in read order.",
                "items": {
                    "type": "object",
                    "required": ["metric", "tags", "tuples"],
                    "properties": {
                        "metric": {"type": "string", "pattern": r"^[A-Za-z0-9._/-]+$"},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                        "tuples": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "array",
                                "minItems": len(FIELDS),
                                "prefixItems": [_tuple_item(*field) for field in FIELDS],
                            },
                        },
                    },
                },
            },
        },
    }


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
