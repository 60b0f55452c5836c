"""The app factory: ``create_app(settings)`` builds the Starlette app that uvicorn serves.

Routes:

* ``/graphql``: GraphQL over POST (and GraphiQL for browsers on GET, served offline);
* ``/graphiql-assets/...``: GraphiQL's scripts and styles, installed with the package;
* ``/exports/{token}``: download of a finished export; ``/exports/schema.xsd``: the XML schema;
* ``/healthz``: liveness and index figures for probes;
* ``/``: redirects browsers to GraphiQL.

In front of the routes (outermost first): CORS, only when origins are configured; the request
body limit (413); bearer-token identification (:mod:`graph.middleware`). The GraphQL endpoint then
answers POST only with ``Content-Type: application/json`` (415 otherwise, a simple CSRF guard),
401 without a valid token when tokens are configured, never runs queries over GET (GET serves the
GraphiQL page), and takes no batches. WebSockets authenticate with the handshake's header or the
``connection_init`` payload (what GraphiQL sends from its headers editor).

Start-up opens (or rebuilds) the index, syncs it with the store, starts following the index's
change log for subscribers (whichever process synced), deletes expired exports (then on a timer)
and starts the store watcher; shutdown stops them and closes the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from graph.auth import TokenRegistry, open_bind_refusal, token_from_params
from graph.context import AppState, Context
from graph.downloads import download_export, export_schema
from graph.errors import ErrorCode
from graph.export_jobs import ExportJobs
from graph.ide import graphiql_assets_app, graphiql_headers, graphiql_html
from graph.limits import Limits, watch_connection
from graph.middleware import (
    GRAPHQL_RESPONSE,
    GRAPHQL_RESPONSE_UTF8,
    JSON,
    BearerBackend,
    BodyLimit,
    credentials,
    error_response,
    http_error,
    on_auth_error,
    request_error_status,
    response_media_type,
    server_error,
    unauthenticated,
)
from graph.permissions import principal_of
from graph.schema import build_schema
from graph.settings import Settings
from graph.transport_ws import TextFrames, TransportWSHandler
from storage.index import RecordIndex
from storage.watcher import StoreWatcher

log = logging.getLogger("execgraph")


class RequestContext(Context):
    """The request context, plus the ``connection_init`` payload of a WebSocket."""

    connection_params: dict[str, Any] | None = None


class ExecgraphGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context, access rules and offline GraphiQL page."""

    # graphql-transport-ws: text frames, refusals as 'error' messages (see graph.transport_ws).
    websocket_adapter_class = TextFrames
    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, state: AppState, registry: TokenRegistry, **kwargs: Any) -> None:
        super().__init__(build_schema(Limits.from_settings(state.settings)), **kwargs)
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


#: Allocations between two young-generation collections (CPython's default is 700). One list
#: page allocates about a million short-lived objects; collecting every 700 of them costs
#: latency and finds nothing, as nearly all die by reference counting.
GC_THRESHOLD: Final = 20_000


def settle_garbage_collector() -> None:
    """Keep the collector off the long-lived objects, once start-up is done.

    The schema, the app and the imported modules are some hundred thousand objects that live as
    long as the process. ``gc.freeze()`` moves them out of the collector's view, so that a full
    collection, which used to walk them all in the middle of some request, stays short: the
    long tail (p99) of every request class comes down. The threshold is raised for the same
    reason (see :data:`GC_THRESHOLD`).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, middle, old)


def create_app(settings: Settings, *, index: RecordIndex | None = None) -> Starlette:
    """Build the app for ``settings``; pass ``index`` to reuse one already open and synced.

    Raises ValueError when ``settings`` would serve without tokens on a non-loopback address,
    and :class:`graph.auth.TokenConfigError` when the configured tokens cannot be read.
    """
    refusal = open_bind_refusal(
        settings.host,
        tokens_configured=settings.tokens_configured,
        insecure_no_auth=settings.insecure_no_auth,
    )
    if refusal is not None:
        raise ValueError(refusal)
    registry = TokenRegistry(settings.tokens_file, settings.token_hashes)
    own_index = index is None
    if index is None:
        index = RecordIndex(
            settings.store,
            settings.index_path,
            max_file_bytes=settings.max_file_bytes,
            on_reader=watch_connection,
        )
    else:
        index.set_reader_hook(watch_connection)
    state = AppState(settings=settings, index=index, exports=ExportJobs(settings, index))
    watcher = StoreWatcher(
        index,
        mode=settings.watch_mode,
        poll_interval_ms=settings.poll_interval_ms,
        rescan_interval_s=settings.rescan_interval_s,
    )

    index.add_listener(state.broadcaster.publish)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if own_index:
            index.open()
            if settings.startup_sync:
                report = index.sync()
                log.info(
                    "index synced: %d files, %d added, %d changed, %d removed, %d not servable",
                    report.scanned,
                    report.added,
                    report.updated,
                    report.removed,
                    report.invalid,
                )
        # Subscribers hear of every change logged from now on, by any process on this index.
        state.broadcaster.bind(asyncio.get_running_loop(), index)
        # Expired exports are deleted now and then on a timer, files and job records alike.
        purger = asyncio.create_task(state.exports.purge_forever(), name="execgraph-purge")
        settle_garbage_collector()
        if settings.watch:
            # Without a start-up sync (the CLI synced just before), the watcher catches up
            # on anything that changed in between, in its own thread.
            watcher.start(initial_sync=not settings.startup_sync)
        try:
            yield
        finally:
            state.broadcaster.close()
            purger.cancel()
            await state.exports.close()
            watcher.stop()
            if own_index:
                index.close()

    graphql = ExecgraphGraphQL(
        state,
        registry,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=False,
        # Only the maintained protocol; the legacy graphql-ws one is off (see README).
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=settings.connection_init_timeout_s),
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        allowed_origins=settings.allowed_origins,
    )

    async def healthz(request: Request) -> JSONResponse:
        # pid and subscribers: which worker process answered, and how many it serves.
        return JSONResponse(
            {
                "status": "ok",
                "watching": watcher.running,
                "pid": os.getpid(),
                "subscribers": state.broadcaster.subscriber_count,
            }
        )

    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    middleware = [
        Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
        Middleware(
            AuthenticationMiddleware, backend=BearerBackend(registry), on_error=on_auth_error
        ),
    ]
    if settings.allowed_origins:
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
        middleware.insert(0, cors)

    app = Starlette(
        middleware=middleware,
        # Starlette's own 404s, 405s and 500s GraphQL-shaped too (not text/plain).
        exception_handlers={StarletteHTTPException: http_error, Exception: server_error},
        routes=[
            Route("/", root),
            Route("/healthz", healthz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Mount("/graphiql-assets", app=graphiql_assets_app(), name="graphiql-assets"),
            Route("/exports/schema.xsd", export_schema),
            Route("/exports/{token}", download_export(state)),
        ],
        lifespan=lifespan,
    )
    app.state.execgraph = state
    app.state.watcher = watcher
    return app


def app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory``: settings from EXECGRAPH_* environment variables."""
    return create_app(Settings())  # store and the rest come from the environment
