"""GraphQL over HTTP through the front door: media types, status codes, GraphQL-shaped refusals.

Every answer that is not a success is ``{"errors": [{"message", "extensions": {"code"}}]}`` (plus
``"data": null`` in ``application/json``), whichever layer refuses: Strawberry, Starlette's
routing, our middleware. With ``Accept: application/graphql-response+json`` request errors are
4xx with no ``data`` entry; with JSON (or no ``Accept``) they stay 200, as legacy clients expect.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from graph.api import resolvers
from graph.errors import ErrorCode
from graph.server.endpoint import ExecgraphGraphQL
from graph.server.middleware import request_error_status, response_media_type

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def client(
    populated_store: tuple[Path, list[dict[str, Any]]], make_client: Callable[..., TestClient]
) -> TestClient:
    return make_client(populated_store[0], max_body_bytes=4096)


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


def assert_graphql_shaped(response: Any, status: int, code: str, *, strict: bool) -> None:
    """``response`` is a refusal with ``status`` and ``code``, in the media type asked for."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ({"errors"} if strict else {"data", "errors"}), body
    if not strict:
        assert body["data"] is None
    assert error_codes(body) == [code], body
    assert body["errors"][0]["message"]
    media_type = response.headers["content-type"].partition(";")[0]
    assert media_type == (GRAPHQL_RESPONSE if strict else JSON)


# -- choosing the media type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        ("application/json; charset=utf-8", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("Application/GraphQL-Response+JSON; charset=utf-8", GRAPHQL_RESPONSE),
        # Equal weights: the one listed first (the spec's recommended client header first).
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", JSON),
        # Weights decide (Apollo Client's header; a client preferring JSON).
        (f"{GRAPHQL_RESPONSE},{JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        # A type named outright beats a wildcard of the same weight, and q=0 refuses it.
        (f"*/*, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"*/*, {JSON};q=0", GRAPHQL_RESPONSE),
        ("text/html,application/xhtml+xml,*/*;q=0.8", JSON),  # a browser
        ("application/graphql+json, application/json, multipart/mixed", JSON),  # urql
        (f"{JSON};q=nonsense", JSON),  # a malformed weight is ignored
        ("text/html", None),
        (f"{JSON};q=0, {GRAPHQL_RESPONSE};q=0", None),
    ],
)
def test_the_answer_is_in_the_preferred_media_type(accept: str | None, chosen: str | None) -> None:
    assert response_media_type(accept) == chosen


def test_answers_follow_accept(client: TestClient) -> None:
    query = {"query": "{ executions(first: 1) { totalCount } }"}
    for accept, media_type in [(None, JSON), ("*/*", JSON), (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE)]:
        headers = {} if accept is None else {"Accept": accept}
        response = client.post("/graphql", json=query, headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].partition(";")[0] == media_type
        assert response.json() == {"data": {"executions": {"totalCount": 60}}}
    strict = client.post("/graphql", json=query, headers={"Accept": GRAPHQL_RESPONSE})
    assert strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"


def test_a_post_accepting_neither_type_is_406(client: TestClient) -> None:
    response = client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": "text/html"}
    )
    assert_graphql_shaped(response, 406, "NOT_ACCEPTABLE", strict=False)


# -- request errors: 200 in JSON, 400 without data in the GraphQL-over-HTTP type -----------------

REQUEST_ERRORS = [
    ({"query": "{ executions("}, "GRAPHQL_PARSE_FAILED"),
    ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "query($n: Int!) { executions(first: $n) { totalCount } }"}, "BAD_USER_INPUT"),
    (
        {
            "query": "query($n: Int!) { executions(first: $n) { totalCount } }",
            "variables": {"n": "many"},
        },
        "BAD_USER_INPUT",
    ),
    (
        {"query": "query A { __typename }", "operationName": "B"},
        "OPERATION_RESOLUTION_FAILURE",
    ),
]


@pytest.mark.parametrize(("request_body", "code"), REQUEST_ERRORS)
def test_request_errors_have_a_code_and_the_status_of_their_media_type(
    client: TestClient, request_body: dict[str, Any], code: str
) -> None:
    legacy = client.post("/graphql", json=request_body)
    assert_graphql_shaped(legacy, 200, code, strict=False)
    strict = client.post("/graphql", json=request_body, headers={"Accept": GRAPHQL_RESPONSE})
    assert_graphql_shaped(strict, 400, code, strict=True)
    assert strict.json()["errors"] == legacy.json()["errors"]


def test_field_errors_are_answers_200_in_both_types(client: TestClient) -> None:
    partial = '{ ok: executions(first: 1) { totalCount } bad: node(id: "!!") { id } }'
    null_root = "{ executions(first: -1) { totalCount } }"  # a non-null root field: data null
    for headers in ({}, {"Accept": GRAPHQL_RESPONSE}):
        body = client.post("/graphql", json={"query": partial}, headers=headers).json()
        assert body["data"] == {"ok": {"totalCount": 60}, "bad": None}
        assert error_codes(body) == ["BAD_USER_INPUT"]
        response = client.post("/graphql", json={"query": null_root}, headers=headers)
        assert response.status_code == 200
        assert response.json()["data"] is None
        assert response.json()["errors"][0]["path"] == ["executions"]


@pytest.mark.parametrize(
    ("response", "status"),
    [
        ({"data": {"a": 1}}, None),
        ({"data": None, "errors": [{"message": "m", "path": ["a"]}]}, None),  # partial
        ({"data": None, "errors": [{"message": "m", "extensions": {"code": "X"}}]}, 400),
        ({"data": None, "errors": [{"message": "m"}]}, 400),
        ({"data": None, "errors": [{"message": "m", "extensions": {"code": "TIMEOUT"}}]}, 504),
        ({"errors": [{"message": "m", "extensions": {"code": "FORBIDDEN"}}]}, 403),
        ({"errors": [{"message": "m", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}, 500),
    ],
)
def test_status_of_an_answer_in_the_graphql_response_type(
    response: dict[str, Any], status: int | None
) -> None:
    assert request_error_status(response) == status


# -- refusals, from every layer ------------------------------------------------------------------

JSON_BODY = {"Content-Type": "application/json"}
REFUSALS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/graphql", {"content": b'[{"query": "{ __typename }"}]'}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b'{"query":'}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b""}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b'"{ __typename }"'}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b"17"}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b"null"}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b'{"qeury": "{ __typename }"}'}, 400, "BAD_REQUEST"),
    ("POST", "/graphql", {"content": b'{"query": 7}'}, 400, "BAD_REQUEST"),
    (
        "POST",
        "/graphql",
        {"content": b'{"query": "{ __typename }", "variables": [7]}'},
        400,
        "BAD_REQUEST",
    ),
    (
        "POST",
        "/graphql",
        {"content": b'{"query": "{ __typename }", "extensions": 1}'},
        400,
        "BAD_REQUEST",
    ),
    (
        "POST",
        "/graphql",
        {"content": b'{"query": "{ __typename }", "operationName": 7}'},
        400,
        "BAD_REQUEST",
    ),
    (
        "POST",
        "/graphql",
        {"content": b'{"query": "subscription { executionAdded { executionId } }"}'},
        400,
        "BAD_REQUEST",
    ),
    (
        "POST",
        "/graphql",
        {"content": b'{"query": "' + b" " * 5000 + b'"}'},
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    (
        "POST",
        "/graphql",
        {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    ("GET", "/graphql?query=%7B__typename%7D", {}, 400, "BAD_REQUEST"),
    ("GET", "/graphql?query=mutation%7BsyncIndex%7Bscanned%7D%7D", {}, 400, "BAD_REQUEST"),
    (
        "GET",
        "/graphql?query=subscription%7BexecutionAdded%7BexecutionId%7D%7D",
        {},
        400,
        "BAD_REQUEST",
    ),
    ("GET", "/graphql", {"headers": {"Accept": JSON}}, 400, "BAD_REQUEST"),
    ("PUT", "/graphql", {}, 405, "METHOD_NOT_ALLOWED"),
    ("DELETE", "/graphql", {}, 405, "METHOD_NOT_ALLOWED"),
    ("HEAD", "/graphql", {}, 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/healthz", {}, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/graphql/more", {}, 404, "NOT_FOUND"),
    ("GET", "/nothing-here", {}, 404, "NOT_FOUND"),
    ("GET", "/graphiql-assets/nope.js", {}, 404, "NOT_FOUND"),
]


@pytest.mark.parametrize(("method", "path", "options", "status", "code"), REFUSALS)
@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
def test_every_refusal_is_graphql_shaped_with_a_code(
    client: TestClient,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    code: str,
    accept: str | None,
) -> None:
    headers = {**JSON_BODY, **options.get("headers", {})}
    if accept is not None:
        headers["Accept"] = accept
    response = client.request(method, path, content=options.get("content"), headers=headers)
    if method == "HEAD":  # no body: status, type and Allow only
        assert response.status_code == status
        assert response.headers["allow"] == "GET, POST"
        return
    assert_graphql_shaped(response, status, code, strict=accept is not None)
    if status == 405:
        assert "GET" in response.headers["allow"]


def test_an_unknown_token_is_refused_in_the_type_asked_for(
    populated_store: tuple[Path, Any], make_client: Callable[..., TestClient]
) -> None:
    secured = make_client(populated_store[0], token_hashes=["reader:" + "0" * 64])
    query = {"query": "{ __typename }"}
    for accept, strict in [(None, False), (GRAPHQL_RESPONSE, True)]:
        headers = {} if accept is None else {"Accept": accept}
        for token in ({"Authorization": "Bearer nope"}, {}):  # unknown, missing
            response = secured.post("/graphql", json=query, headers=headers | token)
            assert_graphql_shaped(response, 401, "UNAUTHENTICATED", strict=strict)
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_unhandled_exception_is_a_graphql_shaped_500_without_a_traceback(
    populated_store: tuple[Path, Any],
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_client(populated_store[0]).app

    async def broken(self: ExecgraphGraphQL, request: Any) -> Any:
        raise RuntimeError("secret /srv/detail")

    monkeypatch.setattr(ExecgraphGraphQL, "run", broken)
    with TestClient(app, raise_server_exceptions=False) as raw:
        for accept, strict in [(None, False), (GRAPHQL_RESPONSE, True)]:
            headers = {} if accept is None else {"Accept": accept}
            response = raw.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
            assert_graphql_shaped(response, 500, "INTERNAL_SERVER_ERROR", strict=strict)
            assert "secret" not in response.text
            assert "RuntimeError" not in response.text


def test_the_readme_lists_every_error_code() -> None:
    text = README.read_text("utf-8")
    paragraph = text[text.index("**Error codes**") :].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([A-Z_]+)`", paragraph))
    assert listed == {code.value for code in ErrorCode}


def test_an_unknown_export_link_is_a_graphql_shaped_404(client: TestClient) -> None:
    response = client.get("/exports/" + "A" * 43)
    assert_graphql_shaped(response, 404, "NOT_FOUND", strict=False)
    assert "no such export" in response.json()["errors"][0]["message"]


def test_refusals_of_the_server_s_own_rules_have_their_status(
    populated_store: tuple[Path, Any],
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over budget: 400; stopped by the time limit: 504; introspection in production: 403."""
    client = make_client(populated_store[0], request_timeout_s=0.3, production=True)
    strict = {"Accept": GRAPHQL_RESPONSE}
    nested = "edges { node { items { execution { items { content } } } } }"
    costly = f"{{ executions(first: 500) {{ {nested} }} }}"
    response = client.post("/graphql", json={"query": costly}, headers=strict)
    assert_graphql_shaped(response, 400, "QUERY_TOO_COMPLEX", strict=True)
    response = client.post(
        "/graphql", json={"query": "{ __schema { types { name } } }"}, headers=strict
    )
    assert_graphql_shaped(response, 403, "FORBIDDEN", strict=True)

    async def stuck(*args: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(resolvers, "resolve_items", stuck)
    response = client.post("/graphql", json={"query": "{ items { totalCount } }"}, headers=strict)
    assert_graphql_shaped(response, 504, "TIMEOUT", strict=True)
    legacy = client.post("/graphql", json={"query": "{ items { totalCount } }"})
    assert_graphql_shaped(legacy, 200, "TIMEOUT", strict=False)
