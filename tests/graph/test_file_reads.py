"""No N+1: summaries read no file; a page of runs with items reads each file once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from graph.api.context import AppState
from tests.conftest import data


def files_read(client: TestClient) -> int:
    state: AppState = client.app.state.execgraph  # type: ignore[attr-defined]
    return state.files_read


def test_summary_pages_and_counts_read_no_file(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0])
    data(
        client,
        """{ executions(first: 50, filter: {safetyLevels: ["kids", "youth"]}) { totalCount
             edges { node { executionId configName timestamp userId itemCount
                            totalExecutionTime } } }
           storageStats { totalRecords byConfig { value count } byDay { value count } } }""",
    )
    assert files_read(client) == 0


def test_fifty_runs_with_items_read_each_file_once(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0])
    got = data(
        client,
        """{ executions(first: 50) { edges { node { executionId
              items { content }
              stage2: items(filter: {stages: [2]}) { content }
              again: items { sequenceNumber execution { items { sequenceNumber } } } } } } }""",
    )
    assert len(got["executions"]["edges"]) == 50
    assert files_read(client) == 50
    data(client, "{ items(first: 200) { edges { node { content execution { executionId } } } } }")
    assert files_read(client) - 50 == len(
        {  # one read per distinct run on that page of items
            e["node"]["execution"]["executionId"]
            for e in data(
                client, "{ items(first: 200) { edges { node { execution { executionId } } } } }"
            )["items"]["edges"]
        }
    )
