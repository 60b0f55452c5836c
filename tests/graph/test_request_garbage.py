"""A request is freed by reference counting when it ends, not left to the garbage collector.

Objects caught in a reference cycle wait for a collection; with thousands of them per page
the collection lands, all at once, in the middle of some later request (the p99 of the fast
query classes in the benchmark). These tests call the ASGI app directly (no test client,
whose own machinery makes cycles of its own) and look at what a collection finds.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from graph.server.app import create_app
from graph.settings import Settings

#: Each test collects the whole heap a few times: seconds in all.
pytestmark = pytest.mark.slow

QUERIES = {
    "typename": "{ __typename }",
    "page": """{ executions(first: 20, filter: {safetyLevels: ["kids", "youth"]}) {
        totalCount edges { cursor node { executionId configName timestamp itemCount } } } }""",
    "items": """{ executions(first: 20) { edges { node { executionId
        items { sequenceNumber itemType content modelUsed metadata } } } } }""",
    "search": """{ items(filter: {itemTypes: [INTERCEPTION_ITERATION]}, first: 20) {
        totalCount edges { node { content execution { executionId safetyLevel } } } } }""",
    "filtered items": """{ executions(first: 20) { edges { node {
        items(filter: {itemTypes: [USER_INPUT_TEXT, TRANSLATION_RESULT]}) { content } } } } }""",
    "stats": "{ storageStats { totalRecords byConfig { value count } } }",
}


async def _post(app: Starlette, query: str) -> dict[str, Any]:
    body = json.dumps({"query": query}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    chunks: list[bytes] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    result: dict[str, Any] = json.loads(b"".join(chunks))
    return result


def _garbage_after(app: Starlette, query: str) -> Counter[str]:
    """What a collection finds after three requests of ``query`` (once caches are warm)."""
    found: Counter[str] = Counter()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for _ in range(2):
                warm = await _post(app, query)  # caches filled, lazy imports done
                assert "errors" not in warm, warm
            gc.collect()  # earlier garbage freed for good, before anything is kept
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(3):
                    answer = await _post(app, query)
                    assert "errors" not in answer, answer
                gc.collect()
                found.update(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()  # (cleared while still saving, they would be kept again)
                gc.collect()

    asyncio.run(run())
    return found


@pytest.mark.parametrize("name", list(QUERIES))
def test_a_request_leaves_no_reference_cycles(
    name: str,
    populated_store: tuple[Path, list[dict[str, Any]]],
    index_path: Path,
) -> None:
    app = create_app(Settings(store=populated_store[0], index=index_path, watch=False))
    found = _garbage_after(app, QUERIES[name])
    assert sum(found.values()) == 0, found.most_common(10)


def test_the_check_sees_a_cycle_when_there_is_one(
    populated_store: tuple[Path, list[dict[str, Any]]],
    index_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: with graphql-core's executor cycle left in place, the garbage shows it."""
    from graph.api.schema import AcyclicExecutionContext

    monkeypatch.setattr(
        AcyclicExecutionContext,
        "build_response",
        lambda self, data: super(AcyclicExecutionContext, self).build_response(data),
    )
    app = create_app(Settings(store=populated_store[0], index=index_path, watch=False))
    found = _garbage_after(app, QUERIES["typename"])
    assert found["graph.api.schema.AcyclicExecutionContext"] == 3, found.most_common(10)
