"""The garbage collector's policy is the server entry point's choice, not the app factory's.

``create_app`` leaves the process's collector as it found it (every test builds apps);
``execgraph serve`` builds its app through the uvicorn factory that tunes it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.server import app as app_module
from tests.conftest import data


def _gc_state() -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_create_app_leaves_the_garbage_collector_alone(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> None:
    before = _gc_state()
    client = make_client(populated_store[0])
    data(client, "{ __typename }")
    assert _gc_state() == before


def test_serve_builds_its_app_with_the_collector_tuned(
    populated_store: tuple[Path, list[dict[str, Any]]],
    index_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``execgraph serve`` hands uvicorn the factory that tunes the process's collector."""
    import os

    import uvicorn
    from click.testing import CliRunner
    from uvicorn.importer import import_from_string

    from graph.cli import main as cli

    started: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    environment = dict(os.environ)
    threshold = gc.get_threshold()
    try:
        result = CliRunner().invoke(
            cli.main,
            ["serve", "--store", str(populated_store[0]), "--index", str(index_path)],
        )
        assert result.exit_code == 0, result.output
        [(target, options)] = started
        assert options["factory"] is True
        os.environ["EXECGRAPH_WATCH"] = "false"
        factory = import_from_string(target)
        untouched = _gc_state()
        with TestClient(factory()) as client:
            assert client.post("/graphql", json={"query": "{ __typename }"}).status_code == 200
            assert gc.get_threshold()[0] == app_module.GC_THRESHOLD != untouched[0][0]
            assert gc.get_freeze_count() > untouched[1]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        os.environ.clear()
        os.environ.update(environment)
