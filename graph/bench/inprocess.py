"""Counting record files read per request, with the app in this process.

Over HTTP the server's file reads cannot be seen, so this one figure is taken in-process: the
real app (``create_app``, lifespan included) is called through ASGI directly, and files are
counted twice, by the app's own counter (``app.state.execgraph.files_read``) and by an audit
hook that sees every ``open`` of a path inside the store, whatever code path opened it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette

from graph.api.context import AppState
from graph.bench.client import check_graphql
from graph.bench.results import FileReads
from graph.server.app import create_app
from graph.settings import Settings


class OpenCounter:
    """Counts opens of files under one directory while active (a process-wide audit hook).

    Audit hooks cannot be removed, so one hook is installed per process and does nothing while
    no counter is active.
    """

    _installed = False
    _active: OpenCounter | None = None
    _lock = threading.Lock()

    def __init__(self, directory: Path) -> None:
        self.prefix = os.path.join(os.path.realpath(directory), "")
        self.plain_prefix = os.path.join(os.path.abspath(directory), "")
        self.count = 0

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        counter = cls._active
        if counter is None or event != "open" or not args:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str) and path.startswith((counter.prefix, counter.plain_prefix)):
            counter.count += 1

    def __enter__(self) -> OpenCounter:
        with OpenCounter._lock:
            if not OpenCounter._installed:
                sys.addaudithook(OpenCounter._hook)
                OpenCounter._installed = True
            OpenCounter._active = self
        return self

    def __exit__(self, *exc: object) -> None:
        OpenCounter._active = None


async def asgi_post(app: Starlette, path: str, body: bytes) -> tuple[int, bytes]:
    """One ``POST`` through the ASGI interface, without a network or an HTTP library."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    complete = asyncio.Event()
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await complete.wait()  # the client "disconnects" only once it has the response
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


ReadQuery = tuple[str, dict[str, Any] | None, Callable[[dict[str, Any]], int]]
"""(query, variables, how many distinct runs its data contains)."""


def count_file_reads(
    store: Path, index_path: Path, queries: dict[str, ReadQuery]
) -> dict[str, FileReads]:
    """Run each query once against the real app in-process; count the files each one read."""
    app = create_app(Settings(store=store, index=index_path, watch=False))
    state: AppState = app.state.execgraph
    found: dict[str, FileReads] = {}

    async def main() -> None:
        async with app.router.lifespan_context(app):
            for name, (query, variables, runs_of) in queries.items():
                payload: dict[str, Any] = {"query": query, "variables": variables}
                before = state.files_read
                with OpenCounter(store) as opens:
                    status, body = await asgi_post(app, "/graphql", orjson.dumps(payload))
                data = check_graphql(status, body)
                found[name] = FileReads(state.files_read - before, opens.count, runs_of(data))

    quiet = logging.getLogger("execgraph")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the app's start-up narration would cut into the table
    try:
        asyncio.run(main())
    finally:
        quiet.setLevel(level)
    return found
