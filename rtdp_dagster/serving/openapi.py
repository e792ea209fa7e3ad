"""The router's OpenAPI description, served at /openapi.json and committed as docs/serving.openapi.json.

``python -m rtdp_dagster.serving.openapi`` rewrites the committed file; a test keeps both equal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rtdp_dagster.serving.filters import FILTER_TYPES
from rtdp_dagster.serving.model import AGGREGATORS, FILL_POLICIES

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "serving.openapi.json"

_ERROR = {
    "description": "OpenTSDB-style error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ERRORS = {"400": _ERROR, "413": _ERROR, "502": _ERROR, "504": _ERROR}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, description: str, schema: dict | None = None, required: bool = False, many: bool = False) -> dict:
    base = schema or {"type": "string"}
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "array", "items": base} if many else base,
        **({"style": "form", "explode": True} if many else {}),
    }


_TIME = {
    "oneOf": [
        {"type": "integer", "description": "epoch seconds or milliseconds (more than 10 digits)"},
        {"type": "string", "description": "'now', '<n><unit>-ago' or yyyy/MM/dd[-HH:mm[:ss]]"},
    ]
}

_SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "Filter": {
        "type": "object",
        "required": ["type", "tagk", "filter"],
        "properties": {
            "type": {"type": "string", "enum": list(FILTER_TYPES)},
            "tagk": {"type": "string"},
            "filter": {
                "type": "string",
                "description": "literal values separated by |, a wildcard with *, or a regexp",
            },
            "groupBy": {"type": "boolean", "default": False},
        },
    },
    "SubQuery": {
        "type": "object",
        "required": ["metric", "aggregator"],
        "properties": {
            "metric": {"type": "string"},
            "aggregator": {"type": "string", "enum": list(AGGREGATORS)},
            "downsample": {
                "type": "string",
                "description": "<interval>-<aggregator>[-<fill>]: interval <n>ms|s|m|h|d|w"
                "|n|y (weeks start Monday, n and y are calendar months and years, UTC) or 0all; fill one of "
                + ", ".join(FILL_POLICIES),
                "example": "1h-avg",
            },
            "rate": {"type": "boolean", "default": False},
            "rateOptions": {
                "type": "object",
                "properties": {
                    "counter": {"type": "boolean"},
                    "counterMax": {"type": "number"},
                    "resetValue": {"type": "number"},
                    "dropResets": {"type": "boolean"},
                },
            },
            "tags": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "tag key to value, a|b, a pattern with * or type(filter); all group by",
            },
            "filters": {"type": "array", "items": {"$ref": "#/components/schemas/Filter"}},
            "explicitTags": {"type": "boolean", "default": False},
        },
    },
    "QueryRequest": {
        "type": "object",
        "required": ["start", "queries"],
        "properties": {
            "start": _TIME,
            "end": _TIME,
            "queries": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/SubQuery"}},
            "msResolution": {"type": "boolean", "default": False, "description": "timestamps in ms instead of s"},
            "showQuery": {"type": "boolean", "default": False, "description": "echo each sub-query, with its index"},
            "timezone": {"type": "string", "default": "UTC", "description": "for absolute dates only"},
        },
    },
    "QueryResult": {
        "type": "object",
        "required": ["metric", "tags", "aggregateTags", "dps"],
        "properties": {
            "metric": {"type": "string"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "aggregateTags": {"type": "array", "items": {"type": "string"}},
            "dps": {
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": {"type": ["number", "null"]},
                        "description": "timestamp -> value",
                    },
                    {
                        "type": "array",
                        "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": ["number", "null"]}]},
                        "description": "[[timestamp, value], ...] with ?arrays=true",
                    },
                ]
            },
            "query": {"type": "object", "description": "the sub-query with its index (showQuery)"},
        },
    },
    "LastPoint": {
        "type": "object",
        "properties": {
            "metric": {"type": "string"},
            "timestamp": {"type": "integer"},
            "value": {"type": "string"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "tsuid": {"type": "string"},
        },
    },
    "Lookup": {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "metric": {"type": "string"},
            "limit": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "object"}},
            "time": {"type": "integer"},
            "startIndex": {"type": "integer"},
            "totalResults": {"type": "integer"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "tsuid": {"type": "string"},
                        "metric": {"type": "string"},
                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            },
        },
    },
}


def openapi_document() -> dict:
    strings = {"type": "array", "items": {"type": "string"}}
    query_params = [
        _param("start", "start time (GET form)", _TIME),
        _param("end", "end time, default now (GET form)", _TIME),
        _param(
            "m",
            "aggregator:[downsample:][rate[{counter,max,reset}]:][explicit_tags:]metric[{tags}][{filters}]",
            many=True,
        ),
        _param("ms", "millisecond timestamps", {"type": "boolean"}),
        _param("show_query", "echo the sub-queries", {"type": "boolean"}),
        _param("arrays", "dps as [[timestamp, value], ...] (OpenTSDB 2.4)", {"type": "boolean"}),
    ]
    query_response = _json(
        {"type": "array", "items": {"$ref": "#/components/schemas/QueryResult"}},
        "one result per group; the X-Rtdp-Route header names the TSDBs and levels used",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rtdp query router",
            "version": "1.0.0",
            "description": (
                "The OpenTSDB 2.x HTTP query API over rtdp's realtime TSDB and rollups (Grafana's OpenTSDB data "
                "source). Queries are routed by range and downsample interval and merged at the boundary where the "
                'rollups end; the tags rollup, agg and part are reserved. Errors: {"error": {"code", "message"}}: '
                "400 for a bad query, 413 for a body over serve.max_body_bytes, 502 for an unreachable TSDB, 504 "
                "for a timeout."
            ),
        },
        "paths": {
            "/api/version": {"get": {"summary": "server version", "responses": {"200": _json({"type": "object"})}}},
            "/api/aggregators": {
                "get": {
                    "summary": "supported aggregators (cross-series and downsample)",
                    "responses": {"200": _json(strings)},
                }
            },
            "/api/config/filters": {
                "get": {"summary": "supported tag filter types", "responses": {"200": _json({"type": "object"})}}
            },
            "/api/suggest": {
                "get": {
                    "summary": "metric names, tag keys or tag values starting with q",
                    "parameters": [
                        _param(
                            "type", "what to suggest", {"type": "string", "enum": ["metrics", "tagk", "tagv"]}, True
                        ),
                        _param("q", "prefix; q= (empty) suggests everything, no q suggests nothing"),
                        _param("max", "at most this many (default 25)", {"type": "integer"}),
                    ],
                    "responses": {"200": _json(strings), **_ERRORS},
                }
            },
            "/api/search/lookup": {
                "get": {
                    "summary": "series of a metric with matching tags ('*' for any)",
                    "parameters": [
                        _param("m", "metric{tagk=tagv,...}", required=True),
                        _param("limit", "at most this many (default 25)", {"type": "integer"}),
                    ],
                    "responses": {"200": _json({"$ref": "#/components/schemas/Lookup"}), **_ERRORS},
                },
                "post": {
                    "summary": "the same with a JSON body {metric, tags: [{key, value}], limit}",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {"200": _json({"$ref": "#/components/schemas/Lookup"}), **_ERRORS},
                },
            },
            "/api/query": {
                "get": {
                    "summary": "query in the query-string form",
                    "parameters": query_params,
                    "responses": {"200": query_response, **_ERRORS},
                },
                "post": {
                    "summary": "query with a JSON body",
                    "parameters": [query_params[-1]],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryRequest"}}},
                    },
                    "responses": {"200": query_response, **_ERRORS},
                },
            },
            "/api/query/last": {
                "get": {
                    "summary": "newest point per series (realtime TSDB)",
                    "parameters": [
                        _param("timeseries", "metric{tagk=tagv,...}", many=True, required=True),
                        _param("back_scan", "hours to look back (default: the realtime retention)", {"type": "number"}),
                    ],
                    "responses": {
                        "200": _json({"type": "array", "items": {"$ref": "#/components/schemas/LastPoint"}}),
                        **_ERRORS,
                    },
                },
                "post": {
                    "summary": "the same with {queries: [{metric, tags}], backScan}",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": _json({"type": "array", "items": {"$ref": "#/components/schemas/LastPoint"}}),
                        **_ERRORS,
                    },
                },
            },
            "/api/rtdp/value_mappings": {
                "get": {
                    "summary": "per metric, status text -> numeric code (configuration)",
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": _json({"type": "object"})}}},
        },
        "components": {"schemas": _SCHEMAS},
    }


def document_text() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DOCUMENT_PATH.write_text(document_text())
    print(f"wrote {DOCUMENT_PATH}", file=sys.stderr)
