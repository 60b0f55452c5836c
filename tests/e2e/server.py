"""Servers for the end-to-end tests, on 127.0.0.1: the app under uvicorn in a background thread
(:func:`serve`), ``execgraph serve`` as a process of its own (:func:`serving`), and a
graphql-transport-ws client."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import websockets
from websockets.typing import Subprotocol

from graph.server.app import create_app
from graph.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningServer:
    """Handle on a server started by :func:`serve`."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int, app: Any):
        self.server = server
        self.thread = thread
        self.port = port
        self.app = app

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "server did not stop"


@contextmanager
def serve(store: Path, index: Path, **settings: Any) -> Iterator[RunningServer]:
    """Run the app under uvicorn on a free loopback port for the duration of the block."""
    port = free_port()
    app = create_app(Settings(store=store, index=index, **settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        assert thread.is_alive(), "server thread died"
        time.sleep(0.02)
    running = RunningServer(server, thread, port, app)
    try:
        yield running
    finally:
        if running.thread.is_alive():
            running.stop()


def text_message(frame: str | bytes) -> dict[str, Any]:
    """A graphql-transport-ws message from its frame, which must be a text frame."""
    assert isinstance(frame, str), f"binary frame (the protocol sends JSON strings): {frame!r}"
    message: dict[str, Any] = json.loads(frame)
    return message


class Subscriber:
    """A minimal graphql-transport-ws client (the protocol GraphiQL, Apollo and urql speak)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> Subscriber:
        ws = await websockets.connect(
            url, subprotocols=[Subprotocol("graphql-transport-ws")], **kwargs
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = text_message(await asyncio.wait_for(ws.recv(), 5))
        assert ack["type"] == "connection_ack", ack
        return cls(ws)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self.next_id += 1
        op_id = str(self.next_id)
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def receive(self, timeout: float) -> dict[str, Any]:
        """The next message; fails on a binary frame (the protocol's messages are text)."""
        return text_message(await asyncio.wait_for(self.ws.recv(), timeout))

    async def close(self) -> None:
        await self.ws.close()


# -- ``execgraph serve`` as a process of its own ----------------------------------------------

EXECGRAPH = str(Path(sys.executable).parent / "execgraph")


@dataclass
class Server:
    """An ``execgraph serve`` process started by :func:`started`."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


def environment(home: Path) -> dict[str, str]:
    """A user of their own: caches, logs, keys and exports under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGRAPH_")}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_DATA_HOME=str(home / "data"),
        EXECGRAPH_EXPORT_DIR=str(home / "exports"),
        EXECGRAPH_AUDIT_LOG=str(home / "audit.jsonl"),
        EXECGRAPH_PSEUDONYM_KEY="a-test-key-of-enough-length",
    )
    return env


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """One request on a fresh connection (so that it may land on any worker)."""
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", "connection": "close"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def graphql(server: Server, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = http_json(f"{server.http}/graphql", {"query": query, "variables": variables or {}})
    assert "errors" not in body, body
    return body["data"]


@contextmanager
def serving(
    store: Path,
    home: Path,
    *,
    index: Path | None = None,
    workers: int = 1,
    name: str = "server",
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Server]:
    """Start ``execgraph serve``; wait until it answers; stop it at the end."""
    with started(
        store, home, index=index, workers=workers, name=name, env=env, preexec_fn=preexec_fn
    ) as server:
        wait_ready(server)
        yield server


@contextmanager
def started(
    store: Path,
    home: Path,
    *,
    index: Path | None,
    workers: int,
    name: str,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[Server]:
    """Start ``execgraph serve`` as a user of its own (see :func:`environment`) plus ``env``."""
    port = free_port()
    args = [EXECGRAPH, "serve", "--store", str(store), "--port", str(port)]
    args += ["--workers", str(workers)]
    if index is not None:
        args += ["--index", str(index)]
    log = home / f"{name}.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args,
            env={**environment(home), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
            preexec_fn=preexec_fn,
        )
    server = Server(process, port, log)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_ready(server: Server, limit: float = 45) -> None:
    deadline = time.monotonic() + limit
    while True:
        code = server.process.poll()
        assert code is None, f"server exited ({code}): {server.log.read_text()[-3000:]}"
        with suppress(OSError, ValueError):
            if http_json(f"{server.http}/healthz", timeout=2)["status"] == "ok":
                return
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.1)
