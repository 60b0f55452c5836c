"""The app factory: ``create_app(settings)`` builds the Starlette app that uvicorn serves.

Routes:

* ``/graphql``: GraphQL over POST (and GraphiQL for browsers on GET, served offline);
* ``/graphiql-assets/...``: GraphiQL's scripts and styles, installed with the package;
* ``/exports/{token}``: download of a finished export; ``/exports/schema.xsd``: the XML schema;
* ``/healthz``: liveness and index figures for probes;
* ``/``: redirects browsers to GraphiQL.

Start-up opens (or rebuilds) the index, syncs it with the store, then starts the one store watcher;
shutdown stops the watcher and closes the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graph.context import AppState, Context
from graph.downloads import download_export, export_schema
from graph.export_jobs import ExportJobs
from graph.ide import graphiql_assets_app, graphiql_html
from graph.schema import build_schema
from graph.settings import Settings
from storage.index import RecordIndex
from storage.watcher import StoreWatcher

log = logging.getLogger("execgraph")


class ExecgraphGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context and our offline GraphiQL page."""

    def __init__(self, state: AppState, **kwargs: Any) -> None:
        super().__init__(build_schema(), **kwargs)
        self.state = state

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(self.state, request, response)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql_html(endpoint=str(request.url.path)))


def create_app(settings: Settings, *, index: RecordIndex | None = None) -> Starlette:
    """Build the app for ``settings``; pass ``index`` to reuse one already open and synced."""
    own_index = index is None
    index = index or RecordIndex(
        settings.store, settings.index_path, max_file_bytes=settings.max_file_bytes
    )
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
            report = index.sync()
            log.info(
                "index ready: %d files scanned, %d added, %d invalid",
                report.scanned,
                report.added,
                report.invalid,
            )
        if settings.watch:
            watcher.start()
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
        graphql_ide="graphiql" if settings.graphiql else None,
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

    app = Starlette(
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
