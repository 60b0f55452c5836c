"""Idle and slow connections against a real ``execgraph serve`` under a small ``ulimit -n``.

Each test starts the server with ``RLIMIT_NOFILE`` set in ``preexec_fn`` and short timeouts
(EXECGRAPH_IDLE_TIMEOUT_S, EXECGRAPH_HEADER_TIMEOUT_S), opens sockets that never send a byte
or send their request head a byte at a time, and checks: they are closed within the timeout,
a normal client is answered meanwhile (worst latency printed), a connection over the cap gets
a GraphQL-shaped 503 rather than a reset, the watcher keeps indexing new files, and a
WebSocket without ``connection_init`` gets 4408 in time while 200 idle sockets are open.
"""

from __future__ import annotations

import asyncio
import json
import resource
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest
import websockets
from websockets.typing import Subprotocol

from graph.server.connections import descriptor_budget
from tests.e2e.server import Server, serving
from tests.e2e.test_workers import seed_store, write_runs

TYPENAME = json.dumps({"query": "{ __typename }"}).encode()
PROTOCOL = [Subprotocol("graphql-transport-ws")]


@contextmanager
def serve_limited(
    tmp_path: Path, *, nofile: int, runs: int = 5, **env: object
) -> Iterator[tuple[Server, Path]]:
    """``execgraph serve`` with ``ulimit -n nofile`` and the given EXECGRAPH_* settings."""
    store = tmp_path / "store"
    seed_store(store, runs)
    home = tmp_path / "home"
    home.mkdir()
    settings = {f"EXECGRAPH_{k.upper()}": str(v) for k, v in env.items()}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with serving(store, home, env=settings, preexec_fn=limit) as server:
        yield server, store


def post(
    server: Server, body: bytes = TYPENAME, timeout: float = 10
) -> tuple[int, dict[str, object]]:
    """One POST on a fresh connection: (status, JSON body); HTTP errors are answers too."""
    request = urllib.request.Request(
        f"{server.http}/graphql", data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def open_sockets(server: Server, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sockets.append(sock)
    return sockets


def closed_within(sockets: list[socket.socket], limit: float) -> tuple[int, bytes]:
    """Wait up to ``limit`` s for the server to close each socket; (how many it closed, the
    first bytes any of them received before the end)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed, received = 0, b""
    deadline = time.monotonic() + limit
    while closed < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                received = received or data
                continue
            selector.unregister(sock)
            closed += 1
    selector.close()
    return closed, received


@contextmanager
def dripping(sockets: list[socket.socket], every: float = 0.3) -> Iterator[None]:
    """Send each socket one byte of a request head every ``every`` s (a slow-header client)."""
    head = b"POST /graphql HTTP/1.1\r\nhost: x\r\n" + b"x-pad: " + b"a" * 10_000
    stop = threading.Event()

    def drip() -> None:
        for n in range(len(head)):
            for sock in sockets:
                with suppress(OSError):
                    sock.send(head[n : n + 1])
            if stop.wait(every):
                return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


class Latencies:
    """A normal client asking ``{__typename}`` on fresh connections in a thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.times: list[float] = []
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, _ = post(self.server)
                self.statuses.append(status)
            except OSError as exc:  # a reset or a refused connect: what must not happen
                self.failures.append(repr(exc))
            self.times.append(time.monotonic() - started)
            self._stop.wait(0.1)

    def __enter__(self) -> Latencies:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    @property
    def worst(self) -> float:
        return max(self.times)


def test_idle_and_header_dripping_sockets_are_closed_while_a_client_is_answered(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        server, _ = stack.enter_context(
            serve_limited(tmp_path, nofile=256, idle_timeout_s=2, header_timeout_s=2)
        )
        idle = open_sockets(server, 60)
        drippers = open_sockets(server, 60)
        for sock in idle + drippers:
            stack.callback(sock.close)
        stack.enter_context(dripping(drippers))
        started = time.monotonic()
        with Latencies(server) as client:
            idle_closed, _ = closed_within(idle, 2 + 1.5)
            dripped_closed, answer = closed_within(drippers, 2 + 1.5 - (time.monotonic() - started))
        print(
            f"\nidle closed {idle_closed}/60, drippers closed {dripped_closed}/60 "
            f"within {time.monotonic() - started:.1f} s; normal client: {len(client.times)} "
            f"requests, worst {client.worst * 1000:.0f} ms"
        )
        assert idle_closed == 60
        assert dripped_closed == 60
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"REQUEST_TIMEOUT"' in answer
        assert client.failures == []
        assert set(client.statuses) == {200}
        assert client.worst < 1.0


def test_a_stalled_body_closes_the_connection(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server, _ = stack.enter_context(serve_limited(tmp_path, nofile=256, body_timeout_s=2))
        (sock,) = open_sockets(server, 1)
        stack.callback(sock.close)
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"query":'
        )
        started = time.monotonic()
        closed, _ = closed_within([sock], 2 + 1.5)
        assert closed == 1, "a body that stalls must not hold its connection"
        assert time.monotonic() - started > 1.5  # the body timeout, not at once
        assert post(server)[0] == 200


def test_a_request_head_over_64_kib_is_refused_with_431(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server, _ = stack.enter_context(serve_limited(tmp_path, nofile=256))
        (sock,) = open_sockets(server, 1)
        stack.callback(sock.close)
        with suppress(OSError):  # the server may close before all of it is sent
            sock.sendall(b"POST /graphql HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 200_000)
        closed, answer = closed_within([sock], 5)
        assert closed == 1
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert post(server)[0] == 200


def test_over_the_cap_a_client_gets_a_graphql_shaped_503_not_a_reset(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server, _ = stack.enter_context(
            serve_limited(tmp_path, nofile=256, max_connections=30, idle_timeout_s=3)
        )
        held = open_sockets(server, 30)
        for sock in held:
            stack.callback(sock.close)
        time.sleep(0.2)  # the server has accepted them all
        refused = [post(server) for _ in range(5)]
        for status, body in refused:
            assert status == 503, body
            assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"  # type: ignore[index]

        async def websocket() -> int:
            with pytest.raises(websockets.InvalidStatus) as refused_ws:
                async with websockets.connect(server.ws, subprotocols=PROTOCOL):
                    pass
            return refused_ws.value.response.status_code

        assert asyncio.run(websocket()) == 503
        closed, _ = closed_within(held, 3 + 1.5)
        assert closed == 30
        assert post(server)[0] == 200  # room again once the idle ones are gone


def test_a_flood_past_the_descriptors_refuses_politely_and_the_watcher_keeps_indexing(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        server, store = stack.enter_context(serve_limited(tmp_path, nofile=256, idle_timeout_s=8))
        flood = open_sockets(server, 300)  # more than the process has descriptors for
        for sock in flood:
            stack.callback(sock.close)
        # The burst itself: past the last resort (a quarter of the reserve), a connection is
        # closed as soon as it is accepted; once it is over, none is.
        time.sleep(1.5)
        with Latencies(server) as client:
            added = write_runs(store, "flood000", 3, pause=0.05)
            time.sleep(2.0)
        statuses = set(client.statuses)
        print(
            f"\n300 sockets on ulimit -n 256: normal client {sorted(statuses)}, "
            f"{len(client.failures)} failures, worst {client.worst * 1000:.0f} ms"
        )
        assert client.failures == []  # answered or refused, never reset
        assert statuses <= {200, 503}
        for sock in flood:
            sock.close()
        deadline = time.monotonic() + 10
        while True:
            status, body = post(
                server, json.dumps({"query": "{ executions(first: 50) { totalCount } }"}).encode()
            )
            if status == 200 and body["data"]["executions"]["totalCount"] == 5 + len(added):  # type: ignore[index]
                break
            assert time.monotonic() < deadline, (status, body)
            time.sleep(0.2)
        log = server.log.read_text("utf-8", "replace")
        assert "Too many open files" not in log, log[-3000:]


def test_a_websocket_without_connection_init_is_closed_in_time_among_200_idle_sockets(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        server, _ = stack.enter_context(
            serve_limited(tmp_path, nofile=1024, idle_timeout_s=30, connection_init_timeout_s=2)
        )
        idle = open_sockets(server, 200)
        for sock in idle:
            stack.callback(sock.close)

        async def silent() -> tuple[int | None, float]:
            async with websockets.connect(server.ws, subprotocols=PROTOCOL) as ws:
                started = time.monotonic()
                with suppress(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                return ws.close_code, time.monotonic() - started

        code, elapsed = asyncio.run(silent())
        # A client that upgrades and then never answers anything, not even the close frame.
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        stack.callback(raw.close)
        raw.sendall(
            b"GET /graphql HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
            b"sec-websocket-protocol: graphql-transport-ws\r\n\r\n"
        )
        upgraded = time.monotonic()
        assert raw.recv(4096).startswith(b"HTTP/1.1 101")
        released, frames = closed_within([raw], 10)
        held = time.monotonic() - upgraded
        print(
            "\nconnection_init timeout 2 s among 200 idle sockets: "
            f"closed {code} after {elapsed:.2f} s; a client that never answers: socket closed "
            f"after {held:.2f} s"
        )
        assert code == 4408
        assert elapsed < 2 + 1
        assert released == 1
        assert frames.startswith(b"\x88")  # the close frame (4408) came first
        assert held < 2 + 1 + 1  # the timeout, then at most WS_CLOSE_TIMEOUT_S for the reply


@pytest.mark.parametrize(
    ("nofile", "configured", "expected"),
    [
        (256, None, (144, 192, 208)),
        (1024, None, (672, 896, 928)),
        (1024, 100, (100, 896, 928)),
        (1024, 5000, (896, 896, 928)),  # never past the descriptors left after the reserve
    ],
)
def test_the_connection_budget_keeps_a_reserve_of_descriptors(
    monkeypatch: pytest.MonkeyPatch, nofile: int, configured: int | None, expected: tuple[int, ...]
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (nofile, nofile))
    assert descriptor_budget(configured) == expected
