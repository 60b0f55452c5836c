"""A small keep-alive HTTP/1.1 client, blocking for one client and asyncio for many.

Why not a full client library: the figures are the server's, so the client must cost as little
and as steadily as possible. Requests are encoded once and sent as bytes; a response is read up
to its last byte (timing stops there) and only checked afterwards. What remains of the client's
cost is measured against :mod:`graph.bench.canned` and subtracted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

_HEADER_END: Final = b"\r\n\r\n"
#: Reconnect before a request when the connection was idle this long (servers close idle ones).
IDLE_LIMIT_S: Final = 2.0


class HttpError(Exception):
    """A response that is not a successful answer to the request."""


def post_json(path: str, payload: object, *, host: str = "127.0.0.1") -> bytes:
    """The bytes of a keep-alive ``POST`` of ``payload`` as JSON."""
    body = orjson.dumps(payload)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def graphql_request(query: str, variables: dict[str, Any] | None = None) -> bytes:
    """A GraphQL request to ``/graphql``."""
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    return post_json("/graphql", payload)


def get(path: str, *, host: str = "127.0.0.1") -> bytes:
    """The bytes of a keep-alive ``GET``."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("ascii")


def _parse_head(head: bytes) -> tuple[int, int | None, bool]:
    """(status, content length or None for chunked, whether the server closes)."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = closes = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            closes = True
    if length is None and not chunked:
        raise HttpError("response has neither Content-Length nor chunked encoding")
    return status, None if chunked else length, closes


class HttpConnection:
    """One keep-alive connection over a blocking socket (reconnects when the server closes)."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = 120.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._last_used = 0.0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buffer = sock, b""
        return sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> HttpConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ready(self) -> None:
        """Connect now if the connection may have been closed while idle.

        uvicorn closes keep-alive connections idle for 5 s; reconnecting here, before a timed
        request starts, keeps connection set-up out of the figures.
        """
        if self._sock is None or time.perf_counter() - self._last_used > IDLE_LIMIT_S:
            self.close()
            self._connect()

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send a prepared request; return (status, body)."""
        sock = self._sock or self._connect()
        sock.sendall(raw)
        while _HEADER_END not in self._buffer:
            self._recv(sock)
        self._last_used = time.perf_counter()
        head, _, self._buffer = self._buffer.partition(_HEADER_END)
        status, length, closes = _parse_head(head)
        body = self._read_body(sock, length)
        if closes:
            self.close()
        return status, body

    def _recv(self, sock: socket.socket) -> None:
        chunk = sock.recv(262_144)
        if not chunk:
            self.close()
            raise HttpError("connection closed by the server")
        self._buffer += chunk

    def _read_body(self, sock: socket.socket, length: int | None) -> bytes:
        if length is not None:
            while len(self._buffer) < length:
                self._recv(sock)
            body, self._buffer = self._buffer[:length], self._buffer[length:]
            return body
        parts = []
        while True:
            while b"\r\n" not in self._buffer:
                self._recv(sock)
            size_line, _, self._buffer = self._buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self._buffer) < size + 2:
                self._recv(sock)
            parts.append(self._buffer[:size])
            self._buffer = self._buffer[size + 2 :]
            if size == 0:
                return b"".join(parts)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one query; return its ``data``, raising on HTTP or GraphQL errors."""
        self.ready()
        return check_graphql(*self.request(graphql_request(query, variables)))


def check_graphql(status: int, body: bytes) -> dict[str, Any]:
    """The ``data`` of a GraphQL response; :class:`HttpError` if it failed in any way."""
    if status != 200:
        raise HttpError(f"HTTP {status}: {body[:300]!r}")
    document = orjson.loads(body)
    if document.get("errors"):
        raise HttpError(f"GraphQL errors: {document['errors']}")
    data: dict[str, Any] = document["data"]
    return data


def check_ok(status: int, body: bytes) -> None:
    """Accept any successful response (for non-GraphQL endpoints)."""
    if status != 200:
        raise HttpError(f"HTTP {status}: {body[:300]!r}")


Check = Callable[[int, bytes], object]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in the client while timing (as :mod:`timeit` does).

    The benchmark's own process holds the stores' ids, prepared requests and results; a
    collection of those in the middle of a timed request (measured: up to 6 ms for the young
    generation, 50 ms for the middle one) would be charged to the server's tail. The collector
    runs, untimed, when the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()


def timed(conn: HttpConnection, raw: bytes, check: Check = check_graphql) -> float:
    """Milliseconds from sending ``raw`` to the last byte of its response (checked after)."""
    conn.ready()
    start = time.perf_counter()
    status, body = conn.request(raw)
    elapsed = (time.perf_counter() - start) * 1000
    check(status, body)
    return elapsed


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """What :func:`run_load` saw."""

    latencies_ms: list[float]
    errors: int
    seconds: float
    client_cpu_s: float


async def _load_client(
    port: int,
    requests: Sequence[bytes],
    deadline: float,
    offset: int,
    latencies: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        serial = offset
        while time.perf_counter() < deadline:
            raw = requests[serial % len(requests)]
            serial += 1
            start = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(_HEADER_END)
            status, length, closes = _parse_head(head[: -len(_HEADER_END)])
            if length is None or closes:
                raise HttpError("the load client expects keep-alive with Content-Length")
            body = await reader.readexactly(length)
            latencies.append((time.perf_counter() - start) * 1000)
            try:
                check_graphql(status, body)
            except HttpError as exc:
                errors.append(str(exc))
    finally:
        writer.close()


def run_load(port: int, requests: Sequence[bytes], *, clients: int, seconds: float) -> LoadOutcome:
    """``clients`` concurrent keep-alive clients cycling through ``requests`` for ``seconds``.

    Runs its own event loop (uvloop when installed, as the server uses it). A client whose
    connection fails counts one error and stops; the others go on.
    """
    latencies: list[float] = []
    errors: list[str] = []

    async def main() -> float:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()
        results = await asyncio.gather(
            *(_load_client(port, requests, deadline, n, latencies, errors) for n in range(clients)),
            return_exceptions=True,
        )
        errors.extend(repr(result) for result in results if isinstance(result, BaseException))
        return time.perf_counter() - start

    cpu = time.process_time()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        elapsed = runner.run(main())
    return LoadOutcome(latencies, len(errors), elapsed, time.process_time() - cpu)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop
