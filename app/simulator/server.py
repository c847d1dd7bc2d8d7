"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length or chunked request bodies,
JSON, server-sent-event, dropped and hung answers.

Hand-written rather than a framework so the package needs no extra dependency and so faults that no
framework would produce (a dropped connection, a response that never comes) are easy to express.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

_log = logging.getLogger(__name__)
_BUG_BODY = b'{"error": {"message": "simulator bug, see its log", "type": "simulator_error"}}'

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024

_REASONS: dict[int, str] = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    498: "Capacity Exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Pause:
    """Yielded by a stream: send nothing for `seconds` (None: until the client leaves or the server stops).

    Unlike a sleep inside the generator, the server watches the socket meanwhile, so a client that gives up
    frees its connection at once instead of pinning it for the whole pause."""

    seconds: float | None


@dataclass(frozen=True, slots=True)
class Drop:
    """Yielded by a stream: close the connection at once, without the chunked body's terminating chunk, as a
    server or proxy that dies mid-answer does."""


@dataclass(slots=True)
class StreamResponse:
    """A chunked answer whose pieces come from `chunks`, which may sleep between them or yield a `Pause`
    or a `Drop`. `close_delimited`: no chunked framing, the connection's close ends the body (HTTP/1.1 allows it,
    and proxies send it), so a `Drop` looks to the client like the natural end of the answer."""

    status: int
    chunks: AsyncIterator[bytes | Pause | Drop]
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/event-stream"
    close_delimited: bool = False


@dataclass(slots=True)
class Disconnect:
    """Close the connection without answering."""


@dataclass(slots=True)
class Hang:
    """Send nothing for `seconds`; if the client is still connected then, send `then` and close."""

    seconds: float
    then: Response | StreamResponse | None = None


Reply = Response | StreamResponse | Disconnect | Hang
Handler = Callable[[Request], Awaitable[Reply]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    """Serves `handler` on one event loop. `start` and `close` must run on that loop."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen and return the bound port (useful when asked for port 0)."""
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEADER_BYTES, backlog=1024
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, then end every open connection, including hung ones."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve_requests(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            # A client that leaves mid-request, sends an absurd chunk header, or shutdown: nothing is owed.
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed a kept-alive connection between requests
            except asyncio.LimitOverrunError:
                await _write(writer, _plain(431, "request header too large"), keep_alive=False)
                return
            try:
                request, keep_alive = await _parse(head, reader, writer)
            except _BadRequest as exc:
                await _write(writer, _plain(exc.status, str(exc)), keep_alive=False)
                return
            try:
                reply = await self._handler(request)
            except Exception:
                # A simulator bug must surface as an unmistakable answer, not as a dropped connection
                # that a router test would read as a network fault.
                _log.exception("simulator handler failed on %s %s", request.method, request.path)
                reply = Response(500, _BUG_BODY)
            if isinstance(reply, Disconnect):
                return
            if isinstance(reply, Hang):
                await _hang(reply, reader, writer)
                return
            if isinstance(reply, StreamResponse):
                reusable = await _write_stream(reader, writer, reply, keep_alive)
            else:
                await _write(writer, reply, keep_alive)
                reusable = keep_alive
            if not reusable:
                return


async def _parse(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[Request, bool]:
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    # HTTP/1.1 keeps connections open unless told otherwise; HTTP/1.0 closes unless told otherwise.
    keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest(400, "invalid content-length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        body = await reader.readexactly(length) if length else b""
    path = target.split("?", 1)[0]
    return Request(method, path, headers, body), keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    pieces: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(400, "invalid chunk size") from None
        if size == 0:
            # Skip any trailer fields up to the blank line that ends the body.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(pieces)
        total += size
        if total > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        pieces.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _head(status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if not keep_alive:
        lines.append("connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


async def _write(writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> None:
    headers = [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        *response.headers,
    ]
    writer.write(_head(response.status, headers, keep_alive) + response.body)
    await writer.drain()


async def _write_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: StreamResponse, keep_alive: bool
) -> bool:
    """Send the stream; True when the connection can serve another request afterwards."""
    framed = not response.close_delimited
    if not framed:
        keep_alive = False  # the close is what ends the body
    headers = [
        ("content-type", response.content_type),
        *([("transfer-encoding", "chunked")] if framed else []),
        ("cache-control", "no-cache"),
        *response.headers,
    ]
    writer.write(_head(response.status, headers, keep_alive))
    try:
        async for chunk in response.chunks:
            if isinstance(chunk, Drop):
                await writer.drain()
                return False
            if isinstance(chunk, Pause):
                if not await _watch(reader, chunk.seconds):
                    return False  # the client left during the pause
                # Whatever the watch read (a pipelined request) is gone, so this connection cannot go on.
                keep_alive = False
                continue
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if framed else chunk)
                await writer.drain()
    finally:
        # Close the generator here, on this loop, when the client leaves mid-stream.
        aclose = getattr(response.chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    if framed:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
    return keep_alive


async def _watch(reader: asyncio.StreamReader, seconds: float | None) -> bool:
    """Wait `seconds` (None: for ever) while reading the socket; False as soon as the client closes it."""
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    while True:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return True
        try:
            data = await asyncio.wait_for(reader.read(65536), remaining)
        except TimeoutError:
            return True
        if not data:
            return False


async def _hang(hang: Hang, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Watch the socket rather than just sleeping, so that a client whose timeout fired releases its
    # connection task at once instead of pinning it for the whole (default: one hour) hang.
    if not await _watch(reader, hang.seconds):
        return
    if isinstance(hang.then, StreamResponse):
        await _write_stream(reader, writer, hang.then, keep_alive=False)
    elif hang.then is not None:
        await _write(writer, hang.then, keep_alive=False)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _plain(status: int, message: str) -> Response:
    return Response(status, message.encode(), [], "text/plain; charset=utf-8")
