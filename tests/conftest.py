"""Fixtures shared by every test package: stores built with the one factory, and the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.server.app import create_app
from graph.settings import Settings
from tests.factory import record_dict, write_record

SHAPES = ("text", "image", "stillepost", "multi", "blocked1", "blocked3", "error")

#: Test folders whose every test starts real servers, processes, browsers or Node clients.
SLOW_FOLDERS = frozenset({"e2e", "smoke"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of :data:`SLOW_FOLDERS` ``slow`` (others carry the mark themselves)."""
    tests = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests).parts
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty store directory."""
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    """Where the index of the test's store lives (outside the store)."""
    return tmp_path / "cache" / "index.sqlite3"


def mixed_records(
    count: int, *, start: datetime = datetime(2025, 11, 1, 9, 0)
) -> list[dict[str, Any]]:
    """``count`` records of every shape, config, user and safety level, some sharing a second."""
    records = []
    for n in range(count):
        at = start + timedelta(minutes=37 * (n // 2))  # pairs share a timestamp: tie-breaks
        records.append(
            record_dict(
                f"exec_{at:%Y%m%d_%H%M%S}_{n:08x}",
                shape=SHAPES[n % len(SHAPES)],
                at=at,
                config_name=["dada", "bauhaus", "stillepost", "image_comparison"][n % 4]
                if SHAPES[n % len(SHAPES)] != "stillepost"
                else "stillepost",
                user_id=f"user_{n % 5}",
                session_id=f"session_{n % 3}",
                safety_level=["kids", "youth", "adult", "research"][n % 4],
                execution_mode=["eco", "fast"][n % 2],
                used_seed=None if n % 6 == 0 else 2**33 + n,
                prompt=[
                    "Ein Haus aus Wolken über Köln",
                    "하늘을 나는 고래",
                    "एक नीला घोड़ा",
                    "قطة على القمر",
                    "A red bicycle 🚲",
                ][n % 5],
                backend_key="backend_used" if n % 3 == 0 else "backend_type",
                extra_items=[
                    {
                        "backend_type": None,
                        "config_used": None,
                        "content": "probe",
                        "execution_time": None,
                        "file_path": None,
                        "item_type": "stage2_style_probe",
                        "loop_iteration": None,
                        "media_type": "hologram",
                        "metadata": {"new": True},
                        "model_used": None,
                        "stage": 2,
                        "stage_iteration": None,
                        "timestamp": (at + timedelta(seconds=59)).isoformat(),
                    }
                ]
                if n % 10 == 4
                else None,
            )
        )
    return records


@pytest.fixture
def populated_store(store: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A store of 60 mixed records plus a few malformed files."""
    records = mixed_records(60)
    for data in records:
        write_record(store, data)
    (store / "exec_20251101_000000_deadbeef.json").write_bytes(b"")
    (store / "exec_20251101_000001_deadbeef.json").write_text(
        '{"execution_id": "x", "items": [', "utf-8"
    )
    (store / "notes.txt").write_text("not a record", "utf-8")
    return store, records


@pytest.fixture
def make_client(
    index_path: Path,
) -> Iterator[Callable[..., TestClient]]:
    """Start the app on a store (lifespan included); closed at the end of the test."""
    clients: list[TestClient] = []

    def make(store: Path, **settings: Any) -> TestClient:
        settings.setdefault("watch", False)
        app = create_app(Settings(store=store, index=index_path, **settings))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def gql(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a query; return the whole response body (data and errors)."""
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a query that must succeed; return its data."""
    body = gql(client, query, variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result
