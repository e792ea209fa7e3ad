"""The router's HTTP app (Starlette): OpenTSDB's query API, its errors, CORS and the OpenAPI document.

Handlers parse and validate on the event loop's worker threads and never raise past their
ApiError: a bad request is a 400, an unreachable or slow TSDB a 502 or 504, always with OpenTSDB's
JSON error shape; an unexpected error is logged and answered as a 500 in the same shape. /api/query
is parsed and planned on the event loop itself; a query VictoriaMetrics answers whole (passthrough)
is read and answered there too, anything else runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rtdp_dagster.config import Settings
from rtdp_dagster.serving import passthrough
from rtdp_dagster.serving.buckets import LEVEL_ORDER
from rtdp_dagster.serving.catalog import Catalog, parse_lookup_m, validate_lookup
from rtdp_dagster.serving.encode import encode_results
from rtdp_dagster.serving.errors import ApiError, bad_request
from rtdp_dagster.serving.execute import Limits, QueryEngine
from rtdp_dagster.serving.filters import FILTER_EXAMPLES, FILTER_TYPES
from rtdp_dagster.serving.history_end import HistoryEnds
from rtdp_dagster.serving.last import last_points, parse_last_body, parse_last_params
from rtdp_dagster.serving.model import AGGREGATORS
from rtdp_dagster.serving.openapi import openapi_document
from rtdp_dagster.serving.parse import flag, parse_json_body, parse_query_string
from rtdp_dagster.serving.segment_cache import SegmentCache
from rtdp_dagster.serving.timeparse import duration_ms
from rtdp_dagster.serving.vm import Deadline, VmClient

log = logging.getLogger(__name__)
VERSION = "2.4.0"
# Generous per-point and per-series sizes of a VictoriaMetrics answer, for the cap on what one read holds.
_BYTES_PER_POINT, _BYTES_PER_SERIES = 64, 1024


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def error_response(error: ApiError) -> JsonResponse:
    return JsonResponse(error.body(), status_code=error.code)


class Router:
    """Everything a request needs: the TSDB clients, caches, the query engine and the limits."""

    def __init__(self, settings: Settings) -> None:
        serve = settings.serve
        vm = settings.stack.victoria_metrics
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rtdp-router-tsdb")
        # A query_range answer is about 25 bytes per point and 200 per series: more cannot pass the limits.
        cap = _BYTES_PER_POINT * serve.max_datapoints + _BYTES_PER_SERIES * serve.max_series
        self.realtime = VmClient(settings.tsdb.realtime.url, "realtime", max_response_bytes=cap)
        self.history = VmClient(settings.tsdb.history.url, "history", max_response_bytes=cap)
        for client in (self.realtime, self.history):
            client.warm()
        self.realtime_retention_ms = duration_ms(vm.realtime.retention)
        history_retention_ms = duration_ms(vm.history.retention)
        levels = [name for name in LEVEL_ORDER if name in settings.batch.history_levels]
        self.max_range_ms = duration_ms(serve.max_range, "serve.max_range")
        if serve.max_range.endswith("y"):
            # Grafana's "last N years" counts calendar years: allow leap years (366 days each).
            self.max_range_ms = int(serve.max_range[:-1]) * 366 * 86_400_000
        self.history_ends = HistoryEnds(self.history, levels, history_retention_ms, serve.history_end_cache_s)
        self.engine = QueryEngine(
            realtime=self.realtime,
            history=self.history,
            history_ends=self.history_ends,
            levels=levels,
            realtime_retention_ms=self.realtime_retention_ms,
            realtime_below_ms=duration_ms(serve.realtime_below, "serve.realtime_below"),
            limits=Limits(serve.max_series, serve.max_datapoints),
            pool=self.pool,
            history_cache=SegmentCache(serve.history_cache_s, serve.history_cache_entries),
        )
        self.catalog = Catalog(
            [(self.realtime, self.realtime_retention_ms), (self.history, history_retention_ms)],
            levels,
            serve.metadata_cache_s,
            self.pool,
        )

    def deadline(self) -> Deadline:
        return Deadline(self.settings.serve.request_timeout_s)


def guarded(answer: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that never raises: an ApiError is its own answer, anything else is logged and a 500,
    both in OpenTSDB's JSON error shape."""

    async def endpoint(request: Request) -> Response:
        try:
            return await answer(request)
        except ApiError as error:
            return error_response(error)
        except Exception:
            log.exception("router: unexpected error on %s %s", request.method, request.url.path)
            return error_response(ApiError(500, "internal error in the query router; see its log"))

    return endpoint


def create_app(settings: Settings) -> RouterApp:
    router = Router(settings)

    def handler(work: Callable[[Request, bytes], object]) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            body = await _body(request, settings.serve.max_body_bytes)
            result = await run_in_threadpool(work, request, body)
            return result if isinstance(result, Response) else JsonResponse(result)

        return guarded(answer)

    def version(request: Request, body: bytes) -> dict:
        return {
            "version": VERSION,
            "short_revision": "rtdp",
            "full_revision": "rtdp-query-router",
            "repo": "rtdp",
            "host": socket.gethostname(),
            "user": "rtdp",
            "repo_status": "MINT",
            "timestamp": str(int(time.time())),
        }

    def aggregators(request: Request, body: bytes) -> list[str]:
        return list(AGGREGATORS)

    def config_filters(request: Request, body: bytes) -> dict:
        return {name: {"description": text, "examples": FILTER_EXAMPLES[name]} for name, text in FILTER_TYPES.items()}

    def suggest(request: Request, body: bytes) -> list[str]:
        params = _json_object(body) if request.method == "POST" else dict(request.query_params)
        prefix = params.get("q")
        if prefix is not None and not isinstance(prefix, str):
            raise bad_request("q must be a string")
        return router.catalog.suggest(params.get("type"), prefix, params.get("max"), router.deadline())

    def lookup(request: Request, body: bytes) -> dict:
        if request.method == "POST":
            payload = _json_object(body)
            raw_tags = payload.get("tags") or []
            if not isinstance(raw_tags, list) or not all(isinstance(item, dict) for item in raw_tags):
                raise bad_request("tags must be a list of {key, value} objects")
            metric, pairs = validate_lookup(
                payload.get("metric") or "*", [(item.get("key"), item.get("value")) for item in raw_tags]
            )
            limit = payload.get("limit")
        else:
            m = request.query_params.get("m")
            if not m:
                raise bad_request("missing m: give m=<metric>{tagk=tagv,...} ('*' for any)")
            metric, pairs = parse_lookup_m(m)
            limit = request.query_params.get("limit")
        return router.catalog.lookup(metric, pairs, limit, router.deadline())

    async def answer_query(request: Request) -> Response:
        """Parsed and planned on the event loop; a query VictoriaMetrics answers whole (passthrough) is read
        and answered there too, anything else runs on a worker thread."""
        body = await _body(request, settings.serve.max_body_bytes)
        now_ms = int(time.time() * 1000)
        params = _multi(request)
        if request.method == "POST":
            parsed = parse_json_body(body, now_ms, router.max_range_ms, arrays=flag(params, "arrays"))
        else:
            parsed = parse_query_string(params, now_ms, router.max_range_ms)
        deadline = router.deadline()
        answered = None
        planned = router.engine.plan_passthrough(parsed, now_ms)
        if planned is not None:
            cache = router.engine.history_cache
            # Every sub-query's reads at the same time, as each sub-query's own calls are.
            reads = (passthrough.fetch_on_loop(item.calls, deadline, cache) for item in planned)
            answers = list(await asyncio.gather(*reads))
            answered = router.engine.passed_results(parsed, planned, answers)
        if answered is None:
            answered = await run_in_threadpool(router.engine.run, parsed, deadline, now_ms)
        results, route = answered
        encoded = encode_results(results, parsed.arrays)
        return Response(encoded, media_type="application/json", headers={"X-Rtdp-Route": route})

    query = guarded(answer_query)

    def query_last(request: Request, body: bytes) -> list[dict]:
        queries, back_scan = parse_last_body(body) if request.method == "POST" else parse_last_params(_multi(request))
        return last_points(router.realtime, queries, back_scan, router.realtime_retention_ms, router.deadline())

    def value_mappings(request: Request, body: bytes) -> dict:
        return settings.serve.value_mappings

    def openapi(request: Request, body: bytes) -> dict:
        return openapi_document()

    both = ["GET", "POST"]
    routes = [
        Route("/api/version", handler(version), methods=both),
        Route("/api/aggregators", handler(aggregators), methods=both),
        Route("/api/config/filters", handler(config_filters), methods=both),
        Route("/api/suggest", handler(suggest), methods=both),
        Route("/api/search/lookup", handler(lookup), methods=both),
        Route("/api/query", query, methods=both),
        Route("/api/query/last", handler(query_last), methods=both),
        Route("/api/rtdp/value_mappings", handler(value_mappings), methods=["GET"]),
        Route("/openapi.json", handler(openapi), methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        message = {404: f"no such endpoint: {request.url.path}", 405: f"method {request.method} not allowed here"}
        return error_response(ApiError(code, message.get(code, str(getattr(exc, "detail", "error")))))

    # Level 1: big responses shrink ~2.4x at a tenth of the default level's cost.
    gzip = Middleware(GZipMiddleware, minimum_size=settings.serve.gzip_min_bytes, compresslevel=1)
    middleware = [gzip]
    if settings.serve.cors_origins:
        # Only named origins get CORS headers; none by default (no credentials: the router has no login).
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.serve.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type"],
            expose_headers=["X-Rtdp-Route"],
        )
        middleware.insert(0, cors)

    async def query_app(scope: Scope, receive: Receive, send: Send) -> None:
        response: ASGIApp = await query(Request(scope, receive))
        if len(response.body) >= settings.serve.gzip_min_bytes:
            # Only an answer big enough to compress passes the GZip middleware (a small one skips its work).
            response = gzip.cls(response, *gzip.args, **gzip.kwargs)
        await response(scope, receive, send)

    direct: ASGIApp = query_app
    for cls, args, kwargs in reversed(middleware):
        if cls is not GZipMiddleware:
            direct = cls(direct, *args, **kwargs)
    app = RouterApp(
        direct,
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
        lifespan=_freeze_startup_objects,
    )
    app.state.router = router
    return app


@contextlib.asynccontextmanager
async def _freeze_startup_objects(app: Starlette) -> AsyncIterator[None]:
    """Everything built before the first request (modules, settings, the app; uvicorn has imported its
    protocols by now) lives as long as the router: moved out of the collector's generations, no
    collection walks it again. Unfrozen, the first full collection after start (some hundred requests
    in) paused the router for 15-45 ms, the whole tail of a short query's latency."""
    gc.collect()
    gc.freeze()
    yield


class RouterApp(Starlette):
    """Starlette, with GET and POST /api/query taken straight to their endpoint behind the same GZip and
    CORS middleware: a dashboard's every request skips the route matching and the error and exception
    middleware, which that endpoint does not need (it answers every error itself)."""

    def __init__(self, query: ASGIApp, **options: Any) -> None:
        super().__init__(**options)
        self.query = query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/query" and scope["method"] in ("GET", "POST"):
            scope["app"] = self
            await self.query(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body larger than {limit:,} bytes (serve.max_body_bytes)")


def _json_object(body: bytes) -> dict:
    try:
        payload = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise bad_request("request body must be a JSON object")
    return payload


def _multi(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params
