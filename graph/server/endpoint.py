"""The GraphQL endpoint: Strawberry's ASGI app with our context, access rules and GraphiQL page.

It answers POST only with ``Content-Type: application/json`` (415 otherwise, a simple CSRF
guard), 401 without a valid token when tokens are configured, never runs queries over GET (GET
serves the GraphiQL page), and takes no batches. WebSockets authenticate with the handshake's
header or the ``connection_init`` payload (what GraphiQL sends from its headers editor).
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from graph.access.permissions import principal_of
from graph.access.tokens import TokenRegistry, token_from_params
from graph.api.context import AppState, Context
from graph.api.schema import build_schema
from graph.errors import ErrorCode
from graph.server.ide import graphiql_headers, graphiql_html
from graph.server.middleware import (
    GRAPHQL_RESPONSE,
    GRAPHQL_RESPONSE_UTF8,
    JSON,
    credentials,
    error_response,
    request_error_status,
    response_media_type,
    unauthenticated,
)
from graph.server.transport_ws import TextFrames, TransportWSHandler


class RequestContext(Context):
    """The request context, plus the ``connection_init`` payload of a WebSocket."""

    connection_params: dict[str, Any] | None = None


class ExecgraphGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context, access rules and offline GraphiQL page."""

    # graphql-transport-ws: text frames, refusals as 'error' messages (graph.server.transport_ws).
    websocket_adapter_class = TextFrames
    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, state: AppState, registry: TokenRegistry, **kwargs: Any) -> None:
        super().__init__(build_schema(state.settings), **kwargs)
        self.state = state
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Strawberry's own HTTP branch, answering its refusals GraphQL-shaped, not as text.
        request = NegotiatedRequest(scope, receive)
        response = self.refuse_post(request) if request.method == "POST" else None
        if response is None:
            try:
                response = await self.run(request)
            except HTTPException as refusal:
                allow = {"Allow": "GET, POST"} if refusal.status_code == 405 else None
                response = error_response(
                    refusal.status_code, refusal.reason, None, allow, media_type=request.answer_type
                )
        await response(scope, receive, send)

    def refuse_post(self, request: NegotiatedRequest) -> Response | None:
        """401 without a valid token (when required), 415 for a body that is not JSON, 406 when
        ``Accept`` takes neither of our media types."""
        if principal_of(request) is None:
            return unauthenticated(
                "a valid token is required: send 'Authorization: Bearer <token>'",
                media_type=request.answer_type,
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            return error_response(
                415,
                "send the request as 'Content-Type: application/json'",
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                media_type=request.answer_type,
            )
        if request.answer_type is None:
            return error_response(
                406, f"answers are {GRAPHQL_RESPONSE} or {JSON}: accept one of them"
            )
        return None

    def parse_json(self, data: str | bytes) -> Any:
        """The request's JSON, which must be an object (or a list: a batch, refused later)."""
        value = super().parse_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, 'expected a JSON object, such as {"query": "{ __typename }"}')
        return value

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData) and not isinstance(data.operation_name, str | None):
            raise HTTPException(400, "`operationName` must be a string or null, if provided")
        return data

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, but subscriptions never run over HTTP and nothing runs over GET.

        Strawberry lets subscriptions through POST and GET (for its multipart transport, not
        offered here), and then runs them as queries, which fails. An operation name that
        names nothing is a GraphQL request error (``OPERATION_RESOLUTION_FAILURE``), answered
        like a validation failure, not a bare 400.
        """
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=HTTP_OPERATIONS.get(request_adapter.method, ()),
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            code = ErrorCode.OPERATION_RESOLUTION_FAILURE
            error = GraphQLError(exc.as_http_error_reason(), extensions={"code": code})
            return PreExecutionError(data=None, errors=[error])
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                message = "subscriptions run over the WebSocket at this path (graphql-transport-ws)"
            else:
                message = "operations never run over GET: POST them as application/json"
            raise HTTPException(400, message) from None
        except MissingQueryError:
            raise HTTPException(400, 'no GraphQL query: send {"query": "..."}') from None

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        if isinstance(request, NegotiatedRequest):
            sub_response.media_type = request.answer_type
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """``application/json`` as Strawberry makes it; the GraphQL-over-HTTP type with the
        status code of a request error (4xx, no ``data`` entry) when execution never began."""
        if sub_response.media_type != GRAPHQL_RESPONSE or isinstance(response_data, list):
            return super().create_response(response_data, sub_response)
        status = request_error_status(response_data)
        if status is not None:
            response_data.pop("data", None)  # a request error has no data entry
            sub_response.status_code = status
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = GRAPHQL_RESPONSE_UTF8
        return response

    def encode_json(self, data: object) -> bytes:
        """Responses are serialised by orjson (several times faster than :mod:`json`).

        orjson refuses integers beyond 64 bits, which a record's free-form ``metadata`` may
        hold; such a response is serialised by :mod:`json` instead.
        """
        try:
            return orjson.dumps(data)
        except TypeError:
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # Queries never run over GET, so a browser's GET always gets the page (a link carrying
        # ?query=... opens the page with that query in the editor).
        browser = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        return browser or super().should_render_graphql_ide(request)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return RequestContext(self.state, request, response)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket at ``connection_init`` (closed with 4403 when refused)."""
        websocket = context.request
        params = getattr(context, "connection_params", None) or {}
        token = token_from_params(params) if self.registry.enabled else None
        if token is not None:
            principal = self.registry.lookup(token)
            if principal is None:
                raise ConnectionRejectionError({"message": "the token is not valid"})
            websocket.scope["auth"], websocket.scope["user"] = credentials(principal)
        elif principal_of(websocket) is None:
            raise ConnectionRejectionError({"message": "a valid token is required"})
        unset: UnsetType = UNSET
        return unset

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(
            graphiql_html(endpoint=str(request.url.path)), headers=graphiql_headers(request.url)
        )


class NegotiatedRequest(Request):
    """A request to the GraphQL endpoint, with the media type its answer is to be in."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope, receive)
        #: :data:`JSON` or :data:`GRAPHQL_RESPONSE`; None: ``Accept`` takes neither.
        self.answer_type = response_media_type(self.headers.get("accept"))


#: What runs over each method: queries and mutations over POST; subscriptions only over the
#: WebSocket; nothing over GET (GET serves GraphiQL).
HTTP_OPERATIONS: Final = {"POST": (OperationType.QUERY, OperationType.MUTATION)}
