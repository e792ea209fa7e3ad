"""VictoriaMetrics reads on the router's event loop: keep-alive connections driven by asyncio.

A query answered by passthrough needs no worker thread: the request is written and the answer read
on the event loop that serves the client, so no thread is woken and no lock handed over on the
way (on a busy two-core machine each hand-over is a scheduling wait). The answer is parsed by
httptools, the C parser uvicorn serves with. Errors are mapped as VmClient maps them: 502 when the
TSDB cannot be reached, 504 when it is too slow, 400 with its message when it refuses the query.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, cast

import httptools
import orjson

from rtdp_dagster.serving.errors import ApiError, backend_timeout, backend_unavailable, bad_request

if TYPE_CHECKING:
    from rtdp_dagster.serving.vm import Deadline

_CONNECT_TIMEOUT_S = 3.0
# VictoriaMetrics closes idle connections after a minute: ours are dropped well before.
_MAX_IDLE_S = 30.0
_POOL_SIZE = 32


class _Exchange(asyncio.Protocol):
    """One keep-alive connection, one request at a time; the answer's body collected as it streams in."""

    def __init__(self, max_body_bytes: int | None, too_large: str) -> None:
        self.transport: asyncio.Transport | None = None
        self.max_body_bytes, self.too_large = max_body_bytes, too_large
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.received = False  # any byte of the current answer
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionResetError("the TSDB closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.max_body_bytes is not None and self.size > self.max_body_bytes:
            # Stopped while it streams in, before the router holds it (and before it is parsed).
            self._fail(bad_request(self.too_large))
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            content = b"".join(self.chunks)
            self.answer.set_result((self.parser.get_status_code(), content, self.parser.should_keep_alive()))

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.chunks, self.size, self.received = [], 0, False
        self.transport.write(request)
        return self.answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc)
        self.close()


class AsyncVmConnections:
    """Idle keep-alive connections to one TSDB for the event loop serving the router, newest first."""

    def __init__(self, host: str, port: int, prefix: str, name: str, base_url: str, max_response_bytes: int | None):
        self.host, self.port, self.prefix = host, port, prefix
        self.name, self.base_url = name, base_url
        self.max_response_bytes = max_response_bytes
        self._idle: list[tuple[float, _Exchange]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def post(self, path: str, form: bytes, deadline: Deadline) -> bytes:
        """The whole answer of one POST with a form body; ApiError as VmClient raises them."""
        request = (
            f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept-Encoding: identity\r\nConnection: keep-alive\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(form)}\r\n\r\n"
        ).encode() + form
        for attempt in range(2):
            # A retry always opens a new connection: another idle one may have been closed as well.
            exchange, reused = await self._get(deadline, fresh=attempt > 0)
            try:
                async with asyncio.timeout(deadline.remaining()):
                    status, content, keep_alive = await exchange.send(request)
            except TimeoutError:
                exchange.close()
                raise backend_timeout(f"the {self.name} TSDB at {self.base_url} did not answer in time") from None
            except ApiError:
                raise
            except (OSError, httptools.HttpParserError) as exc:
                exchange.close()
                if reused and attempt == 0 and not exchange.received:
                    continue  # a keep-alive connection the TSDB had closed: once more on a new one
                if exchange.received:
                    raise backend_unavailable(f"the {self.name} TSDB broke off its answer") from None
                raise backend_unavailable(
                    f"the {self.name} TSDB at {self.base_url} cannot be reached: {type(exc).__name__}"
                ) from None
            except BaseException:
                exchange.close()  # cancelled mid-answer: the connection's state is unknown
                raise
            if keep_alive and not exchange.lost:
                self._put(exchange)
            else:
                exchange.close()
            if status in (400, 422):
                raise bad_request(f"the {self.name} TSDB refused the query: {error_text(content)}")
            if status >= 300:
                raise backend_unavailable(f"the {self.name} TSDB failed: HTTP {status} {error_text(content)}")
            return content
        raise AssertionError("unreachable")

    async def _get(self, deadline: Deadline, fresh: bool) -> tuple[_Exchange, bool]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            for _, exchange in self._idle:
                exchange.close()
            self._idle, self._loop = [], loop
        while self._idle and not fresh:
            since, exchange = self._idle.pop()
            if time.monotonic() - since < _MAX_IDLE_S and not exchange.lost:
                return exchange, True
            exchange.close()
        too_large = (
            f"the query selects more series and points than the router holds "
            f"({self.max_response_bytes or 0:,} bytes from the {self.name} TSDB, set by serve.max_series "
            "and serve.max_datapoints); narrow the tag filters or use a coarser downsample"
        )
        try:
            async with asyncio.timeout(min(_CONNECT_TIMEOUT_S, deadline.remaining())):
                _, exchange = await loop.create_connection(
                    lambda: _Exchange(self.max_response_bytes, too_large), self.host, self.port
                )
        except TimeoutError:
            raise backend_timeout(f"the {self.name} TSDB at {self.base_url} did not answer in time") from None
        except OSError as exc:
            raise backend_unavailable(
                f"the {self.name} TSDB at {self.base_url} cannot be reached: {type(exc).__name__}"
            ) from None
        return exchange, False

    def _put(self, exchange: _Exchange) -> None:
        if len(self._idle) < _POOL_SIZE:
            self._idle.append((time.monotonic(), exchange))
        else:
            exchange.close()


def error_text(content: bytes) -> str:
    """A TSDB's error answer as text: its JSON ``error`` field, else the body."""
    try:
        payload = orjson.loads(content)
        if isinstance(payload, dict) and "error" in payload:
            return str(payload["error"])[:500]
    except orjson.JSONDecodeError:
        pass
    return content[: 64 * 1024].decode("utf-8", "replace")[:500]
