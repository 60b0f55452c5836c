"""The per-request timeout: slow queries get TIMEOUT, and the next request is served as usual."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.api import resolvers
from storage import query
from tests.hardening.conftest import codes, post

#: Each test waits out a request deadline.
pytestmark = pytest.mark.slow

TIMEOUT_S = 0.5
COUNT = "{ executions(first: 1) { totalCount } }"


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> TestClient:
    return make_client(populated_store[0], request_timeout_s=TIMEOUT_S)


def timed_out(client: TestClient, query: str) -> float:
    """POST ``query``, which must end in TIMEOUT; return how long it took."""
    started = time.monotonic()
    body = post(client, query).json()
    elapsed = time.monotonic() - started
    assert body == {
        "data": None,
        "errors": [
            {
                "message": f"the query ran longer than {TIMEOUT_S:g} s and was stopped; ask for "
                "fewer runs or items, or a narrower filter",
                "extensions": {"code": "TIMEOUT", "limitSeconds": TIMEOUT_S},
            }
        ],
    }
    return elapsed


def served_normally(client: TestClient) -> None:
    assert post(client, COUNT).json() == {"data": {"executions": {"totalCount": 60}}}


def test_long_sqlite_statement_is_stopped(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def slow_count(conn: sqlite3.Connection, *args: Any) -> int:
        # ~10 s of SQLite work in one statement: only the progress handler can stop it early.
        sql = (
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 30000000) "
            "SELECT max(x) FROM n"
        )
        return int(conn.execute(sql).fetchone()[0])

    monkeypatch.setattr(query, "count_runs", slow_count)
    assert timed_out(client, COUNT) < TIMEOUT_S + 2
    assert [r for r in caplog.records if r.name == "execgraph.errors"] == []  # expected, not logged
    monkeypatch.undo()
    served_normally(client)


def test_slow_await_is_cancelled(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def stuck(*args: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(resolvers, "resolve_items", stuck)
    assert timed_out(client, "{ items { totalCount } }") < TIMEOUT_S + 2
    served_normally(client)


def test_blocking_resolver_gets_timeout_once_it_returns(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = resolvers.resolve_storage_stats

    def blocking(*args: Any) -> Any:
        time.sleep(TIMEOUT_S + 0.3)
        return real(*args)

    monkeypatch.setattr(resolvers, "resolve_storage_stats", blocking)
    timed_out(client, "{ storageStats { totalRecords } }")
    monkeypatch.undo()
    served_normally(client)


def test_mutations_are_not_cut_short(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    index = client.app.state.execgraph.index  # type: ignore[attr-defined]
    real = index.sync

    def slow_sync(*args: Any) -> Any:
        time.sleep(TIMEOUT_S + 0.3)
        return real(*args)

    monkeypatch.setattr(index, "sync", slow_sync)
    body = post(client, "mutation { syncIndex { scanned } }").json()
    assert "errors" not in body, body
    assert codes(body) == []
    assert body["data"]["syncIndex"]["scanned"] == 62
