"""graphql-transport-ws refusals over a real server: an ``error`` message, one log line.

An operation refused before it runs is answered with the protocol's ``error`` message (each error
with ``extensions.code``); the connection and its other subscriptions go on, and the log gets one
line per refusal, never a traceback. Messages of an unknown type or shape close the connection
with 4400, as the protocol says.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from graph.errors import ErrorCode
from storage.demo.writer import write_atomically
from tests.e2e.server import Subscriber, serve, text_message
from tests.factory import record_dict

#: The server's limits in these tests (small, so that the documents stay readable).
LIMITS = {"max_query_depth": 4, "max_aliases": 3, "max_tokens": 200, "max_query_cost": 15}
ADDED = "subscription { executionAdded { executionId } }"

#: One refused document per kind: (payload, the code of its error).
REFUSALS: dict[str, tuple[dict[str, Any], ErrorCode]] = {
    "syntax": ({"query": "subscription { executionAdded { "}, ErrorCode.GRAPHQL_PARSE_FAILED),
    "tokens": (
        {"query": "subscription { executionAdded { " + "executionId " * 250 + "} }"},
        ErrorCode.TOO_MANY_TOKENS,
    ),
    "depth": (
        {
            "query": "subscription { executionAdded { items { execution { items"
            " { execution { executionId } } } } } }"
        },
        ErrorCode.QUERY_TOO_DEEP,
    ),
    "aliases": (
        {
            "query": "subscription { executionAdded { a: executionId b: executionId c: executionId"
            " d: executionId } }"
        },
        ErrorCode.TOO_MANY_ALIASES,
    ),
    "cost": (  # 1 run + 20 items > 15
        {"query": "subscription { executionAdded { items { sequenceNumber } } }"},
        ErrorCode.QUERY_TOO_COMPLEX,
    ),
    "validation": (
        {"query": "subscription { executionAdded { noSuchField } }"},
        ErrorCode.GRAPHQL_VALIDATION_FAILED,
    ),
    "operation name": (
        {"query": ADDED.replace("subscription", "subscription A"), "operationName": "B"},
        ErrorCode.OPERATION_RESOLUTION_FAILURE,
    ),
}


class LogCapture:
    """Everything the server logs at INFO and above, formatted as the CLI formats it."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def server_log() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture.handler)
        root.setLevel(level)


@pytest.fixture
def live(store: Path, index_path: Path) -> Iterator[str]:
    with serve(store, index_path, **LIMITS) as server:
        yield server.ws_url


async def send(sub: Subscriber, op_id: str, payload: dict[str, Any]) -> None:
    await sub.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))


@pytest.mark.parametrize("kind", REFUSALS)
def test_a_refused_operation_gets_an_error_message_and_the_connection_goes_on(
    live: str, store: Path, server_log: LogCapture, kind: str
) -> None:
    payload, code = REFUSALS[kind]

    async def scenario() -> None:
        sub = await Subscriber.connect(live)
        live_id = await sub.subscribe(ADDED)
        await send(sub, "bad", payload)
        message = await sub.receive(5)
        assert message["type"] == "error", message
        assert message["id"] == "bad"
        errors = message["payload"]
        assert isinstance(errors, list), message
        assert errors, message
        assert [e["extensions"]["code"] for e in errors] == [code] * len(errors)
        assert all(e["message"] for e in errors)
        # The connection is open, its other subscription goes on, the refused id is free again.
        record = record_dict("exec_20251203_100000_0000e001", shape="text")
        write_atomically(store / f"{record['execution_id']}.json", record)
        event = await sub.receive(5)
        assert (event["type"], event["id"]) == ("next", live_id), event
        assert event["payload"]["data"]["executionAdded"]["executionId"] == record["execution_id"]
        await send(sub, "bad", {"query": "{ __typename }"})
        assert (await sub.receive(5))["payload"] == {"data": {"__typename": "Query"}}
        await sub.close()

    asyncio.run(scenario())
    lines = [line for line in server_log.text.splitlines() if "refused" in line]
    assert len(lines) == 1, server_log.text
    assert code in lines[0]
    assert "'bad'" in lines[0]
    assert "Traceback" not in server_log.text


def test_200_refusals_cost_one_short_log_line_each(live: str, server_log: LogCapture) -> None:
    kinds = list(REFUSALS)

    async def scenario() -> list[str]:
        sub = await Subscriber.connect(live)
        codes = []
        for n in range(200):
            payload, _ = REFUSALS[kinds[n % len(kinds)]]
            await send(sub, f"op{n}", payload)
            message = await sub.receive(5)
            assert (message["type"], message["id"]) == ("error", f"op{n}"), message
            codes.append(message["payload"][0]["extensions"]["code"])
        await sub.close()
        return codes

    before = len(server_log.text.encode())
    codes = asyncio.run(scenario())
    assert codes == [REFUSALS[kinds[n % len(kinds)]][1] for n in range(200)]
    grown = len(server_log.text.encode()) - before
    assert "Traceback" not in server_log.text
    assert len([line for line in server_log.text.splitlines() if "refused" in line]) == 200
    assert grown <= 200 * 300, f"{grown / 200:.0f} bytes of log per refused message"


def test_a_query_over_the_socket_answers_once_and_completes(live: str) -> None:
    async def scenario() -> None:
        sub = await Subscriber.connect(live)
        op_id = await sub.subscribe("{ storageStats { totalRecords } }")
        first, second = await sub.receive(5), await sub.receive(5)
        assert first == {
            "id": op_id,
            "type": "next",
            "payload": {"data": {"storageStats": {"totalRecords": 0}}},
        }
        assert second == {"id": op_id, "type": "complete"}
        await sub.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "message",
    [
        {"id": "1", "type": "no-such-type"},
        {"type": "subscribe", "payload": {"query": ADDED}},
        {"id": "1", "type": "subscribe"},
        {"id": "1", "type": "subscribe", "payload": {"query": 12}},
        {"id": "1", "type": "subscribe", "payload": {"query": ADDED, "variables": [1]}},
        {"id": "1", "type": "subscribe", "payload": {"query": ADDED, "operationName": 7}},
    ],
    ids=["unknown type", "no id", "no payload", "query not text", "variables", "operation name"],
)
def test_a_malformed_message_closes_the_connection_with_4400(
    live: str, server_log: LogCapture, message: dict[str, Any]
) -> None:
    async def scenario() -> None:
        sub = await Subscriber.connect(live)
        await sub.ws.send(json.dumps(message))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            text_message(await asyncio.wait_for(sub.ws.recv(), 5))
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400, closed.value.rcvd
        assert closed.value.rcvd.reason

    asyncio.run(scenario())
    assert "Traceback" not in server_log.text
