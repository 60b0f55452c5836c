"""The page rule, declared once: the resolvers and the query cost read the same page sizes."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.api.paging import PageSizes
from graph.errors import BadUserInput

ROOT = Path(__file__).resolve().parents[2]
PAGES = PageSizes(default=3, maximum=7)


def test_neither_size_given_is_the_default_page_forwards_or_back() -> None:
    assert PAGES.requested(None, None, before_only=False) == (3, None)
    assert PAGES.requested(None, None, before_only=True) == (None, 3)
    assert PAGES.requested(0, None, before_only=False) == (0, None)
    assert PAGES.requested(None, 7, before_only=False) == (None, 7)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (8, None, "'first' must be between 0 and 7 (got 8)"),
        (None, -1, "'last' must be between 0 and 7 (got -1)"),
        (2, 2, "either 'first' (with 'after') or 'last' (with 'before'), not both"),
    ],
)
def test_sizes_out_of_the_rule_are_refused(
    first: int | None, last: int | None, message: str
) -> None:
    with pytest.raises(BadUserInput, match=re.escape(message)):
        PAGES.requested(first, last, before_only=False)


def test_the_cost_counts_the_largest_size_within_the_rule() -> None:
    assert PAGES.at_most([None, None]) == 3
    assert PAGES.at_most([2, 5]) == 5
    assert PAGES.at_most([100]) == 7


def _post(client: TestClient, query: str) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _cost(client: TestClient, query: str) -> int:
    [error] = _post(client, query)["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    cost: int = error["extensions"]["cost"]
    return cost


def test_a_server_with_other_page_sizes_applies_them_everywhere(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> None:
    client = make_client(populated_store[0], default_page_size=3, max_page_size=7)
    runs = _post(client, "{ executions { edges { cursor } } }")["data"]["executions"]["edges"]
    items = _post(client, "{ items { edges { cursor } } }")["data"]["items"]["edges"]
    assert (len(runs), len(items)) == (3, 3)
    refused = _post(client, "{ executions(first: 8) { totalCount } }")["errors"][0]
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "between 0 and 7" in refused["message"]

    costly = make_client(populated_store[0], default_page_size=3, max_page_size=7, max_query_cost=1)
    shape = "{ edges { node { executionId } } }"
    unpaged = _cost(costly, f"{{ executions {shape} }}")
    assert unpaged == _cost(costly, f"{{ executions(first: 3) {shape} }}")
    assert unpaged < _cost(costly, f"{{ executions(first: 7) {shape} }}")
    message = _post(costly, f"{{ executions {shape} }}")["errors"][0]["message"]
    assert "default 3" in message


_SIZES = {"default_page_size", "max_page_size"}
_READERS = {"graph/settings.py", "graph/api/paging.py"}


def test_only_the_page_rule_reads_the_page_sizes() -> None:
    """A second copy of the rule would read the sizes itself: it must go through PageSizes."""
    found = []
    for path in sorted((ROOT / "graph").rglob("*.py")):
        where = path.relative_to(ROOT).as_posix()
        if where in _READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in _SIZES:
                found.append(f"{where}:{node.lineno} .{node.attr}")
    assert found == [], "use graph.api.paging.PageSizes:\n" + "\n".join(found)
