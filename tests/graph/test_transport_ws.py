"""The graphql-transport-ws handler's pieces: subscribe payload checks and the refusal log line.

Behaviour over a real socket is in ``tests/e2e/test_ws_errors.py``; these pin the edges a client
controls (the shape of its message, the length and line breaks of what it sends).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLError
from starlette.testclient import TestClient

from graph.server.app import create_app
from graph.server.transport_ws import LOG_FIELD_CHARS, payload_problem, refusal_line
from graph.settings import Settings
from tests.e2e.server import text_message


@pytest.mark.parametrize(
    "message",
    [
        {"id": "1", "type": "subscribe", "payload": {"query": "{ a }"}},
        {
            "id": "1",
            "type": "subscribe",
            "payload": {
                "query": "{ a }",
                "variables": None,
                "operationName": None,
                "extensions": None,
            },
        },
        {
            "id": "x",
            "type": "subscribe",
            "payload": {
                "query": "query A { a }",
                "variables": {"v": 1},
                "operationName": "A",
                "extensions": {},
            },
        },
    ],
)
def test_well_formed_subscribe_messages_pass(message: dict[str, Any]) -> None:
    assert payload_problem(message) is None


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ({"type": "subscribe", "payload": {"query": "{ a }"}}, "'id'"),
        ({"id": 1, "type": "subscribe", "payload": {"query": "{ a }"}}, "'id'"),
        ({"id": "1", "type": "subscribe", "payload": "{ a }"}, "'payload'"),
        ({"id": "1", "type": "subscribe", "payload": {}}, "'query'"),
        ({"id": "1", "type": "subscribe", "payload": {"query": None}}, "'query'"),
        (
            {"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "variables": [1]}},
            "'variables'",
        ),
        (
            {"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "operationName": 3}},
            "'operationName'",
        ),
        (
            {"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "extensions": "x"}},
            "'extensions'",
        ),
    ],
)
def test_malformed_subscribe_messages_say_what_is_wrong(
    message: dict[str, Any], named: str
) -> None:
    problem = payload_problem(message)
    assert problem is not None
    assert named in problem


def test_the_refusal_line_is_one_bounded_line_whatever_the_client_sends() -> None:
    hostile_id = "op\n" * 5000
    errors = [
        GraphQLError("Syntax Error:\n" + "x" * 10_000, extensions={"code": "GRAPHQL_PARSE_FAILED"}),
        GraphQLError("no code at all"),
    ]
    line = refusal_line(hostile_id, errors)
    assert "\n" not in line
    assert len(line) <= 3 * LOG_FIELD_CHARS + 100
    assert "GRAPHQL_PARSE_FAILED: Syntax Error: xxx" in line
    assert "-: no code at all" in line


def test_the_asgi_app_sends_text_frames_and_error_messages(store: Path, index_path: Path) -> None:
    app = create_app(Settings(store=store, index=index_path, watch=False))
    with (
        TestClient(app) as client,
        client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {}})
        frame = ws.receive()
        assert "text" in frame, frame  # not "bytes"
        assert text_message(frame["text"]) == {"type": "connection_ack"}
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "subscription {"}})
        message = text_message(ws.receive()["text"])
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
