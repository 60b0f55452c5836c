"""A real uvicorn server on 127.0.0.1 in a background thread, and a graphql-transport-ws client."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
