"""Connections that cannot hold the server: head, body and idle timeouts, and a connection cap.

uvicorn closes a keep-alive connection only once it has answered a request on it: a socket that
never sends a byte, or sends its request head one byte at a time, is kept forever, and 1,100 of
them used every file descriptor of a process under ``ulimit -n 1024`` (clients reset, the store
watcher failing with EMFILE). :class:`GuardedHttpTools`, uvicorn's httptools protocol with three
timers and a cap, is what ``execgraph serve`` runs (``http=`` as an import string, so that
every worker process builds its own):

* **idle** (``EXECGRAPH_IDLE_TIMEOUT_S``): a connection with no request in progress, before its
  first byte as between requests (uvicorn's keep-alive timer, armed at connect too), is closed;
* **head** (``EXECGRAPH_HEADER_TIMEOUT_S``): a request line and headers must be complete this
  long after their first byte, however the bytes trickle in; a late head is answered ``408``
  (``REQUEST_TIMEOUT``) and the connection closed;
* **head size**: at most :data:`MAX_HEAD_BYTES` (431 ``BAD_REQUEST`` beyond, then closed);
* **body** (``EXECGRAPH_BODY_TIMEOUT_S``): the whole body must follow within this; a stalled
  body closes the connection (the app sees a disconnect);
* **the cap** (``EXECGRAPH_MAX_CONNECTIONS``, HTTP and WebSocket connections of the process):
  a connection over it is answered ``503`` (``SERVICE_UNAVAILABLE``, GraphQL-shaped, with
  ``Retry-After`` and ``Connection: close``) once its head is read, and closed after
  :data:`REFUSAL_GRACE_S` if none comes. The default cap is derived from ``RLIMIT_NOFILE``
  (:func:`descriptor_budget`): descriptors are kept in reserve for the index, the watcher,
  record reads and exports, and past the last usable descriptor a connection is closed at once,
  so exhausting connections never exhausts the process.

WebSockets leave this protocol at the upgrade (their own timers are ping/pong and the
``connection_init`` timeout, :mod:`graph.server.transport_ws`); they still count in the cap.
:class:`PromptClosingWebSockets` (``ws=``) waits :data:`WS_CLOSE_TIMEOUT_S` rather than 10 s
for the close reply of a client it closes, so that a client which never answers (one that sent
no ``connection_init`` either) gives its descriptor back within the ``connection_init``
timeout plus a second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from dataclasses import dataclass
from typing import Any, Final

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from graph.errors import ErrorCode
from graph.settings import Settings

log = logging.getLogger("execgraph.connections")

#: What ``serve`` passes to uvicorn as ``http=``.
PROTOCOL: Final = "graph.server.connections:GuardedHttpTools"
#: ... and as ``ws=``.
WS_PROTOCOL: Final = "graph.server.connections:PromptClosingWebSockets"
#: How long a WebSocket the server closes (4408, shutdown) waits for the client's close reply
#: before its socket is closed (uvicorn's 10 s held a silent client's descriptor that long).
WS_CLOSE_TIMEOUT_S: Final = 1.0
#: How long a connection over the cap may take to send its head before it is closed unanswered.
REFUSAL_GRACE_S: Final = 1.0
#: The largest request head (request line and headers) read; larger ones get 431 and are closed
#: (httptools itself takes headers of any size, each kept in memory).
MAX_HEAD_BYTES: Final = 64 * 1024
#: How long a connection past the descriptor ceiling is drained after its 503.
DRAIN_S: Final = 0.5
#: Descriptors never used for connections: at least this many, or an eighth of the limit.
MIN_RESERVE: Final = 64
#: Seconds a refused client is asked to wait (``Retry-After``).
RETRY_AFTER_S: Final = 1


def _refusal(status: bytes, code: ErrorCode, message: str, *extra: bytes) -> bytes:
    error = {"message": message, "extensions": {"code": code}}
    body = orjson.dumps({"data": None, "errors": [error]})
    head = [
        b"HTTP/1.1 " + status,
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


REQUEST_TIMEOUT_RESPONSE: Final = _refusal(
    b"408 Request Timeout",
    ErrorCode.REQUEST_TIMEOUT,
    "The request head (request line and headers) did not arrive in time.",
)
HEAD_TOO_LARGE_RESPONSE: Final = _refusal(
    b"431 Request Header Fields Too Large",
    ErrorCode.BAD_REQUEST,
    f"The request head is over {MAX_HEAD_BYTES // 1024} KiB.",
)
OVER_CAPACITY_RESPONSE: Final = _refusal(
    b"503 Service Unavailable",
    ErrorCode.SERVICE_UNAVAILABLE,
    "The server has too many open connections; retry in a moment.",
    b"retry-after: %d" % RETRY_AFTER_S,
)
OVER_CAPACITY_BODY: Final = orjson.dumps(
    {
        "data": None,
        "errors": [
            {
                "message": "The server has too many open connections; retry in a moment.",
                "extensions": {"code": ErrorCode.SERVICE_UNAVAILABLE},
            }
        ],
    }
)


async def over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI app a connection over the cap is served by: 503, then the connection closes."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(OVER_CAPACITY_BODY)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": OVER_CAPACITY_BODY})


def descriptor_budget(configured: int | None = None) -> tuple[int, int, int]:
    """The connection cap, the ceiling and the last resort of this process, from
    ``RLIMIT_NOFILE``.

    The ceiling is the soft limit less a reserve (``max(64, limit / 8)``) for everything that
    is not a connection; the cap is ``configured`` (at most the ceiling) or three quarters of
    the ceiling, leaving the last quarter to refuse connections once their head is read. Past
    the ceiling, a connection is answered before its request and drained briefly (so that its
    client reads a 503, not a reset), using at most a quarter of the reserve: the last resort.
    Past that, it is closed at once.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 20
    reserve = max(MIN_RESERVE, soft // 8)
    ceiling = max(8, soft - reserve)
    cap = ceiling * 3 // 4 if configured is None else min(configured, ceiling)
    return max(1, cap), ceiling, ceiling + reserve // 4


@dataclass(frozen=True)
class ConnectionLimits:
    """The timers and the cap of one server process (see the module docstring)."""

    header_timeout_s: float
    body_timeout_s: float
    idle_timeout_s: float
    max_connections: int
    ceiling: int
    last_resort: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        cap, ceiling, last_resort = descriptor_budget(settings.max_connections)
        if settings.max_connections is not None and settings.max_connections > cap:
            log.warning(
                "EXECGRAPH_MAX_CONNECTIONS=%d is more than the descriptors allow (ulimit -n); "
                "capped at %d",
                settings.max_connections,
                cap,
            )
        return cls(
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_connections=cap,
            ceiling=ceiling,
            last_resort=last_resort,
        )


@functools.cache
def process_limits() -> ConnectionLimits:
    """This process's limits, from its ``EXECGRAPH_*`` environment (read once)."""
    limits = ConnectionLimits.from_settings(Settings())
    log.info(
        "connections: at most %d open (descriptor ceiling %d); head %.0f s, body %.0f s, "
        "idle %.0f s",
        limits.max_connections,
        limits.ceiling,
        limits.header_timeout_s,
        limits.body_timeout_s,
        limits.idle_timeout_s,
    )
    return limits


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with head, body and idle timeouts and a connection cap."""

    limits: ConnectionLimits | None = None
    """Set on a subclass (tests, embedders); None: :func:`process_limits`."""

    _timer: asyncio.TimerHandle | None = None
    #: "idle" (no request in progress), "head", "body", "answering" (a WebSocket now) or
    #: "draining" (past the ceiling, answered before its request; reading nothing).
    _phase: str = "idle"
    _refused: bool = False
    _head_bytes: int = 0

    def _limits(self) -> ConnectionLimits:
        return self.limits if self.limits is not None else process_limits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limits = self._limits()
        open_now = len(self.connections)
        super().connection_made(transport)
        if open_now >= limits.ceiling:
            # The reserve is not for connections: answer before the request, then drain what
            # the client sends for a moment (closing on unread bytes would reset it).
            transport.write(OVER_CAPACITY_RESPONSE)
            if open_now >= limits.last_resort or not transport.can_write_eof():
                transport.close()
                return
            transport.write_eof()
            self._phase = "draining"
            self._arm(DRAIN_S, self._close)
            return
        self.timeout_keep_alive = limits.idle_timeout_s  # type: ignore[assignment]
        if open_now >= limits.max_connections:
            self._refused = True
            self.app = over_capacity
            self._arm(REFUSAL_GRACE_S, self._close)
            return
        # uvicorn arms its keep-alive timer only after a response; a silent socket needs it too.
        self.timeout_keep_alive_task = self.loop.call_later(
            limits.idle_timeout_s, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "draining":
            return
        if self._phase == "idle":
            self._phase = "head"
            self._head_bytes = 0
            if not self._refused:  # a refused connection keeps its shorter grace
                self._arm(self._limits().header_timeout_s, self._head_too_slow)
        if self._phase == "head":
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head(HEAD_TOO_LARGE_RESPONSE)
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._phase = "body"
        self._arm(self._limits().body_timeout_s, self._close)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = "idle"
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._phase = "answering"
        if self._refused:  # the WebSocket protocol would serve the app itself: refuse here
            self.transport.write(OVER_CAPACITY_RESPONSE)
            self.transport.close()
            return
        super().handle_websocket_upgrade()

    def _arm(self, delay: float, callback: object) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)  # type: ignore[arg-type]

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_too_slow(self) -> None:
        self._timer = None
        self._refuse_head(REQUEST_TIMEOUT_RESPONSE)

    def _refuse_head(self, response: bytes) -> None:
        self._disarm()
        self._phase = "draining"  # read nothing more
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # never inside another answer
            self.transport.write(response)
            if self.transport.can_write_eof():
                # Read (and drop) what the client still sends for a moment: closing on unread
                # bytes would reset the connection, and the client might not see the answer.
                self.transport.write_eof()
                self._arm(DRAIN_S, self._close)
                return
        self.transport.close()

    def _close(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()


class PromptClosingWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, closing the socket :data:`WS_CLOSE_TIMEOUT_S` after the
    server's close frame when the client does not answer it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = WS_CLOSE_TIMEOUT_S
