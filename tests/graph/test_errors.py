"""Bad input gets BAD_USER_INPUT with a message a person can act on; nothing crashes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import data, gql


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> TestClient:
    return make_client(populated_store[0])


def error_of(
    client: TestClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = gql(client, query, variables)
    assert body.get("errors"), body
    error: dict[str, Any] = body["errors"][0]
    return error


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("first: -1", "'first' must be between 0 and 500"),
        ("first: 501", "'first' must be between 0 and 500"),
        ("last: 100000", "'last' must be between 0 and 500"),
        ("first: 2, last: 2", "not both"),
        ('after: "garbage!!"', "must be a cursor returned by this field"),
        (f'after: "{b64("[1,2,3]")}"', "not a cursor of the executions field"),
        (f'after: "{b64("{}")}"', "must be a cursor"),
        (f'before: "{b64(chr(34) * 3)}"', "must be a cursor"),
        ('after: "' + "A" * 5000 + '"', "too long"),
        (
            f'orderBy: DURATION_ASC, after: "{b64(chr(91) + chr(34) + "r" + chr(34) + ",")}"',
            "cursor",
        ),
        (
            'filter: {since: "2025-12-01T00:00:00", until: "2025-11-01T00:00:00"}',
            "'since' must be earlier",
        ),
        ('filter: {text: "!!!"}', "at least one letter or digit"),
        ('filter: {text: "   "}', "at least one letter or digit"),
    ],
)
def test_bad_page_arguments_are_bad_user_input(client: TestClient, args: str, message: str) -> None:
    error = error_of(client, f"{{ executions({args}) {{ totalCount }} }}")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


def test_cursor_of_another_order_is_refused(client: TestClient) -> None:
    cursor = data(client, "{ executions(first: 1) { pageInfo { endCursor } } }")["executions"][
        "pageInfo"
    ]["endCursor"]
    error = error_of(
        client,
        "query($c: String) { executions(orderBy: DURATION_ASC, after: $c) { totalCount } }",
        {"c": cursor},
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "TIMESTAMP_DESC" in error["message"]


def test_item_cursor_is_not_an_execution_cursor(client: TestClient) -> None:
    cursor = data(client, "{ items(first: 1) { pageInfo { endCursor } } }")["items"]["pageInfo"][
        "endCursor"
    ]
    error = error_of(
        client, "query($c: String) { executions(after: $c) { totalCount } }", {"c": cursor}
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    error = error_of(client, "{ items(first: 1000) { totalCount } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_bad_node_id_is_bad_user_input_and_unknown_is_null(client: TestClient) -> None:
    error = error_of(client, '{ node(id: "***") { id } }')
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert data(client, f'{{ node(id: "{b64("Execution:exec_nope")}") {{ id }} }}') == {
        "node": None
    }
    assert data(client, f'{{ node(id: "{b64("Elephant:1")}") {{ id }} }}') == {"node": None}


def test_first_zero_gives_only_the_count(client: TestClient) -> None:
    got = data(
        client, "{ executions(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage } } }"
    )
    assert got["executions"]["edges"] == []
    assert got["executions"]["totalCount"] == 60
    assert got["executions"]["pageInfo"]["hasNextPage"] is True


def test_unexpected_errors_are_masked_and_logged(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from storage import query

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail /srv/private/path")

    monkeypatch.setattr(query, "count_runs", explode)
    body = gql(client, "{ executions(first: 1) { totalCount } }")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in str(body)
    assert "RuntimeError" not in str(body)
    assert error["extensions"]["requestId"] in error["message"]
    logged = [r for r in caplog.records if r.name == "execgraph.errors"]
    assert len(logged) == 1
    assert "secret detail" in str(logged[0].exc_info)


def test_syntax_and_validation_errors_reach_the_client_with_their_code(client: TestClient) -> None:
    syntax = error_of(client, "{ executions(")
    assert "Syntax Error" in syntax["message"]
    assert syntax["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}
    invalid = error_of(client, "{ nope }")
    assert "Cannot query field" in invalid["message"]
    assert invalid["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    variable = error_of(
        client, "query($n: Int) { executions(first: $n) { totalCount } }", {"n": "x"}
    )
    assert "Int cannot represent" in variable["message"]
    assert variable["extensions"] == {"code": "BAD_USER_INPUT"}


def test_uncoded_errors_at_a_field_are_internal_server_errors(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GraphQLError raised without a code (graphql-core's own, say) still gets one."""
    from graphql import GraphQLError

    def uncoded(*args: Any, **kwargs: Any) -> Any:
        raise GraphQLError("plain message")

    monkeypatch.setattr("storage.query.count_runs", uncoded)
    error = error_of(client, "{ executions(first: 1) { totalCount } }")
    assert error["message"] == "plain message"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


@pytest.mark.parametrize(
    "payload",
    [
        '["r","DURATION_ASC",123456789012345678901234567890,"x"]',
        '["r","DURATION_ASC",1e400,"x"]',
        '["r","TIMESTAMP_DESC","2025","' + "x" * 300 + '"]',
        '["i","2025","x",123456789012345678901234567890]',
        '["i","2025","x",-1]',
        '["i","2025","x",true]',
    ],
)
def test_forged_cursors_never_reach_sqlite_out_of_range(client: TestClient, payload: str) -> None:
    """A forged cursor is refused, or read as a position in range; never a server error."""
    cursor = b64(payload)
    field = "items" if payload.startswith('["i"') else "executions(orderBy: DURATION_ASC"
    query = (
        f'{{ items(after: "{cursor}") {{ totalCount }} }}'
        if field == "items"
        else f'{{ executions(orderBy: {payload.split(",")[1].strip(chr(34))}, after: "{cursor}")'
        " { totalCount } }"
    )
    body = gql(client, query)
    for error in body.get("errors", []):
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    if "errors" not in body:  # a huge duration is a valid (empty) position
        assert payload.startswith('["r","DURATION_ASC",1234')
