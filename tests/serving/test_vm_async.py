"""The router's reads of VictoriaMetrics on its event loop: answers, kept connections and mapped errors,
against a small stand-in TSDB."""

from __future__ import annotations

import asyncio

import pytest

from rtdp_dagster.serving.errors import ApiError
from rtdp_dagster.serving.vm import Deadline, VmClient

QUERY = ("up", 0, 60_000, 60_000)


async def _serve(answers: list[bytes], close_after_each: bool = False) -> tuple[asyncio.Server, int, list[int]]:
    """A stand-in TSDB answering each request with the next of answers; also counts its connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            writer.write(answers.pop(0))
            await writer.drain()
            if close_after_each:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def _chunked(body: bytes, status: str = "200 OK") -> bytes:
    middle = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:middle], body[middle:]))
    return f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"


def test_answers_come_whole_over_one_kept_connection() -> None:
    async def run() -> None:
        server, port, connections = await _serve([_chunked(b'{"a":1}'), _chunked(b'{"b":2}')])
        client = VmClient(f"http://127.0.0.1:{port}", "realtime")
        assert await client.query_range_bytes_on_loop(*QUERY, Deadline(5)) == b'{"a":1}'
        assert await client.query_range_bytes_on_loop(*QUERY, Deadline(5)) == b'{"b":2}'
        assert len(connections) == 1
        server.close()

    asyncio.run(run())


def test_a_kept_connection_the_tsdb_closed_is_retried_on_a_new_one() -> None:
    async def run() -> None:
        server, port, connections = await _serve([_chunked(b"[1]"), _chunked(b"[2]")], close_after_each=True)
        client = VmClient(f"http://127.0.0.1:{port}", "realtime")
        assert await client.query_range_bytes_on_loop(*QUERY, Deadline(5)) == b"[1]"
        await asyncio.sleep(0.05)  # the stand-in has closed the kept connection by now
        assert await client.query_range_bytes_on_loop(*QUERY, Deadline(5)) == b"[2]"
        assert len(connections) == 2
        server.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (_chunked(b'{"status":"error","error":"cannot parse"}', "422 Unprocessable Entity"), 400, "cannot parse"),
        (_chunked(b"overloaded", "503 Service Unavailable"), 502, "HTTP 503 overloaded"),
        (_chunked(b"x" * 5000), 400, "more series and points than the router holds"),
    ],
)
def test_refusals_failures_and_oversized_answers_are_mapped(answer: bytes, code: int, message: str) -> None:
    async def run() -> None:
        server, port, _ = await _serve([answer])
        client = VmClient(f"http://127.0.0.1:{port}", "realtime", max_response_bytes=1000)
        with pytest.raises(ApiError) as raised:
            await client.query_range_bytes_on_loop(*QUERY, Deadline(5))
        assert raised.value.code == code and message in str(raised.value.body())
        server.close()

    asyncio.run(run())


def test_an_unreachable_tsdb_is_502_and_a_silent_one_504() -> None:
    async def run() -> None:
        server, port, _ = await _serve([])
        server.close()
        await server.wait_closed()
        with pytest.raises(ApiError) as raised:
            await VmClient(f"http://127.0.0.1:{port}", "realtime").query_range_bytes_on_loop(*QUERY, Deadline(5))
        assert raised.value.code == 502 and "cannot be reached" in str(raised.value.body())

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)
            await asyncio.sleep(5)

        quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
        client = VmClient(f"http://127.0.0.1:{quiet.sockets[0].getsockname()[1]}", "realtime")
        with pytest.raises(ApiError) as raised:
            await client.query_range_bytes_on_loop(*QUERY, Deadline(0.2))
        assert raised.value.code == 504 and "did not answer in time" in str(raised.value.body())
        quiet.close()

    asyncio.run(run())
