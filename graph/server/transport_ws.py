"""``graphql-transport-ws`` as the clients written by others expect it.

Two departures from Strawberry's defaults, both for clients in the field (GraphiQL, the npm
``graphql-ws`` client, Python's ``gql``):

* **Text frames only.** The protocol's messages are JSON strings. Strawberry's ASGI adapter sends
  whatever the view's ``encode_json`` returns, and ours returns orjson's bytes (fast HTTP
  bodies), so every message went out as a binary frame, which all three clients reject.
  :class:`TextFrames` always sends text; HTTP keeps the bytes.
* **A refused operation gets an ``error`` message and one log line.** An operation refused before
  it runs (syntax, too many tokens, depth, aliases, validation, an unknown operation name, the
  cost budget, a missing role) is answered with the protocol's ``error`` message: the GraphQL
  errors, each with ``extensions.code``. Strawberry instead closes the whole connection (4400)
  on a syntax error or an unknown operation name, ending the client's other subscriptions, and
  sends a subscription's cost refusal as a ``next``. The log gets one line per refusal.

Messages of an unknown type or shape still close the connection with 4400, as the protocol says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types.execution import ExecutionResult, PreExecutionError

from graph.api.context import Context
from graph.errors import QueryTooComplex

log = logging.getLogger("execgraph.ws")

#: How much of a client-chosen string (an operation id, an error message) one log line repeats.
LOG_FIELD_CHARS: Final = 160

#: Optional keys of a ``subscribe`` payload and the JSON types each may have (null included).
_OPTIONAL_PAYLOAD = {"operationName": str, "variables": dict, "extensions": dict}


class TextFrames(ASGIWebSocketAdapter):
    """Strawberry's ASGI WebSocket adapter, sending every message as a text frame."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(self.view.encode_json_string(message))
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


def payload_problem(message: Mapping[str, Any]) -> str | None:
    """Why a ``subscribe`` message is malformed (None when its shape is right)."""
    if not isinstance(message.get("id"), str):
        return "subscribe needs a string 'id'"
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "subscribe needs an object 'payload'"
    if not isinstance(payload.get("query"), str):
        return "the subscribe payload needs a string 'query'"
    for key, kind in _OPTIONAL_PAYLOAD.items():
        value = payload.get(key)
        if value is not None and not isinstance(value, kind):
            return f"'{key}' in the subscribe payload must be {kind.__name__} or null"
    return None


def refusal_errors(result: object) -> list[GraphQLError] | None:
    """The errors of an operation's first result if they say it was refused before it ran.

    Strawberry marks parse, validation and permission failures as :class:`PreExecutionError`;
    the cost check runs as execution starts (it needs the variables), so a subscription over
    the budget comes back as a plain result holding only that error.
    """
    if not isinstance(result, ExecutionResult) or not result.errors:
        return None
    if isinstance(result, PreExecutionError):
        return list(result.errors)
    if result.data is None and all(isinstance(e, QueryTooComplex) for e in result.errors):
        return list(result.errors)
    return None


def _clip(text: str) -> str:
    text = " ".join(text.split())  # one line, whatever the client sent
    return text if len(text) <= LOG_FIELD_CHARS else text[: LOG_FIELD_CHARS - 3] + "..."


def refusal_line(operation_id: str, errors: Sequence[GraphQLError]) -> str:
    """The one log line for a refused operation: its id, and each error's code and message."""
    parts = []
    for error in errors:
        code = (error.extensions or {}).get("code", "-")
        parts.append(f"{code}: {_clip(error.message)}")
    return f"operation {_clip(repr(operation_id))} refused: " + "; ".join(parts)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Strawberry's ``graphql-transport-ws`` handler, answering refusals with ``error``."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        problem = payload_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_subscribe(message)

    async def _send_result_stream(
        self, operation: Operation[Context, None], result_source: StreamResult
    ) -> None:
        first = True
        async for result in result_source:
            refused = refusal_errors(result) if first else None
            if refused:
                await self.refuse(operation, refused)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            await operation.send_next(result)
            first = False

    async def refuse(self, operation: Operation[Context, None], errors: list[GraphQLError]) -> None:
        """End ``operation`` with one ``error`` message; the connection stays open."""
        log.info("%s", refusal_line(operation.id, errors))
        await operation.send_initial_errors(errors)
