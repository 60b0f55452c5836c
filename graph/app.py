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

Start-up opens (or rebuilds) the index, syncs it with the store, then starts the one store watcher;
shutdown stops the watcher and closes the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.base import BaseRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from graph.auth import TokenRegistry, open_bind_refusal, token_from_params
from graph.context import AppState, Context
from graph.downloads import download_export, export_schema
from graph.export_jobs import ExportJobs
from graph.ide import graphiql_assets_app, graphiql_html
from graph.limits import Limits, watch_connection
from graph.middleware import (
    BearerBackend,
    BodyLimit,
    credentials,
    error_response,
    on_auth_error,
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
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = self.refuse_post(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def refuse_post(self, request: Request) -> Response | None:
        """401 without a valid token (when required), 415 for a body that is not JSON."""
        if principal_of(request) is None:
            return unauthenticated(
                "a valid token is required: send 'Authorization: Bearer <token>'"
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            return error_response(
                415,
                "send the request as 'Content-Type: application/json'",
                "UNSUPPORTED_MEDIA_TYPE",
            )
        return None

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
        return HTMLResponse(graphiql_html(endpoint=str(request.url.path)))


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
        state.broadcaster.bind(asyncio.get_running_loop())
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
        settle_garbage_collector()
        if settings.watch:
            # Without a start-up sync (the CLI synced just before), the watcher catches up
            # on anything that changed in between, in its own thread.
            watcher.start(initial_sync=not settings.startup_sync)
        try:
            yield
        finally:
            state.broadcaster.close()
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
        return JSONResponse({"status": "ok", "watching": watcher.running})

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
