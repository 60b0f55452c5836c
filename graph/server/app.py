"""The app factory: ``create_app(settings)`` builds the Starlette app that uvicorn serves.

Routes:

* ``/graphql``: GraphQL over POST (and GraphiQL for browsers on GET, served offline);
* ``/graphiql-assets/...``: GraphiQL's scripts and styles, installed with the package;
* ``/exports/{token}``: download of a finished export; ``/exports/schema.xsd``: the XML schema;
* ``/healthz``: for probes: 200 ``ok``, or 503 ``degraded`` while the store is missing, index
  syncs fail or the index file was unlinked or replaced (:func:`health_response`); whether the
  watcher runs, and which process answered (its pid and subscriber count);
* ``/``: redirects browsers to GraphiQL.

In front of the routes (outermost first): CORS, only when origins are configured; the request
body limit (413); bearer-token identification (:mod:`graph.server.middleware`). The GraphQL
endpoint itself, and what it refuses, is :mod:`graph.server.endpoint`.

Start-up opens (or rebuilds) the index, syncs it with the store (a sync that fails, on a full
disk say, is left to the watcher, which retries it), starts following the index's change log for
subscribers (whichever process synced), deletes expired exports (then on a timer) and starts the
store watcher; shutdown stops them and closes the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from graph.access.tokens import TokenRegistry, open_bind_refusal
from graph.api.context import AppState
from graph.api.extensions.limits import PROGRESS_STEPS, past_deadline
from graph.server.downloads import download_export, export_schema
from graph.server.endpoint import ExecgraphGraphQL
from graph.server.ide import graphiql_assets_app
from graph.server.middleware import (
    BearerBackend,
    BodyLimit,
    http_error,
    on_auth_error,
    server_error,
)
from graph.services.export_jobs import ExportJobs
from graph.settings import Settings
from storage.catalog import Catalog
from storage.index import RecordIndex
from storage.watcher import StoreWatcher

log = logging.getLogger("execgraph")


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


def create_app(
    settings: Settings, *, index: RecordIndex | None = None, tune_gc: bool = False
) -> Starlette:
    """Build the app for ``settings``; pass ``index`` to reuse one already open and synced.

    ``tune_gc`` is the server process's choice (``execgraph serve`` makes it, through
    :func:`app_from_env`): once started, :func:`settle_garbage_collector` tunes the garbage
    collector of the whole process. Apps built for tests and tools leave it alone.

    Raises ValueError when ``settings`` would serve without tokens on a non-loopback address,
    and :class:`graph.access.tokens.TokenConfigError` when the configured tokens cannot be read.
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
            settings.store, settings.index_path, max_file_bytes=settings.max_file_bytes
        )
    catalog = Catalog(index, max_file_bytes=settings.max_file_bytes)
    # A request's SQLite statements stop at its deadline (see graph.api.extensions.limits).
    catalog.abort_statements_when(past_deadline, every=PROGRESS_STEPS)
    state = AppState(
        settings=settings, index=index, catalog=catalog, exports=ExportJobs(settings, catalog)
    )
    watcher = StoreWatcher(
        index,
        mode=settings.watch_mode,
        poll_interval_ms=settings.poll_interval_ms,
        rescan_interval_s=settings.rescan_interval_s,
    )
    index.add_listener(state.broadcaster.publish)

    async def healthz(request: Request) -> JSONResponse:
        # pid and subscribers: which worker process answered, and how many it serves.
        return health_response(watcher, state.broadcaster.subscriber_count)

    graphql = _graphql_endpoint(state, registry)
    app = Starlette(
        middleware=_middleware(settings, registry),
        # Starlette's own 404s, 405s and 500s GraphQL-shaped too (not text/plain).
        exception_handlers={StarletteHTTPException: http_error, Exception: server_error},
        routes=[
            Route("/", _root),
            Route("/healthz", healthz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Mount("/graphiql-assets", app=graphiql_assets_app(), name="graphiql-assets"),
            Route("/exports/schema.xsd", export_schema),
            Route("/exports/{token}", download_export(state)),
        ],
        lifespan=_lifespan(state, watcher, own_index=own_index, tune_gc=tune_gc),
    )
    app.state.execgraph = state
    app.state.watcher = watcher
    return app


def health_response(watcher: StoreWatcher, subscribers: int) -> JSONResponse:
    """``/healthz``: 200 ``ok``, or 503 ``degraded`` while the store is missing or syncs fail
    (the index is still served as it is; a probe should look, not restart: the watcher heals
    both once the store or the disk is back), or while the index file was unlinked or replaced
    under the server (``index.status`` ``missing``: queries fail or serve a file nobody else
    sees; a restart rebuilds it)."""
    health = watcher.health()
    index_status = watcher.index.file_status()
    ok = health.ok and index_status == "ok"
    body: dict[str, object] = {
        "status": "ok" if ok else "degraded",
        "watching": watcher.running and health.store_missing_since is None,
        "pid": os.getpid(),
        "subscribers": subscribers,
    }
    if health.store_missing_since is not None:
        body["store"] = {"status": "missing", "since": _utc(health.store_missing_since)}
    if health.failing_since is not None:
        body["sync"] = {"failing_since": _utc(health.failing_since), "error": health.error}
    if index_status != "ok":
        body["index"] = {"status": index_status, "path": str(watcher.index.index_path)}
    return JSONResponse(body, status_code=200 if ok else 503)


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _lifespan(
    state: AppState, watcher: StoreWatcher, *, own_index: bool, tune_gc: bool
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """Start-up and shutdown, in that order (see the module docstring)."""
    settings, index = state.settings, state.index

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Whether the index is in line with the store now (else the watcher syncs it first).
        synced = settings.startup_sync
        if own_index:
            index.open()
            if settings.startup_sync:
                try:
                    report = index.sync()
                except Exception as exc:
                    if not settings.watch:
                        raise
                    # A full disk or a locked index: serve what the index has; the watcher
                    # retries the full sync until it succeeds (and /healthz says degraded).
                    log.error("index sync at start-up failed (%s): the watcher retries it", exc)
                    synced = False
                else:
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
        if tune_gc:
            settle_garbage_collector()
        if settings.watch:
            # Without a start-up sync (the CLI synced just before), the watcher catches up
            # on anything that changed in between, in its own thread.
            watcher.start(initial_sync=not synced)
        try:
            yield
        finally:
            state.broadcaster.close()
            purger.cancel()
            await state.exports.close()
            watcher.stop()
            if own_index:
                index.close()

    return lifespan


def _graphql_endpoint(state: AppState, registry: TokenRegistry) -> ExecgraphGraphQL:
    settings = state.settings
    return ExecgraphGraphQL(
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


def _middleware(settings: Settings, registry: TokenRegistry) -> list[Middleware]:
    """Outermost first: CORS (only with allowed origins), the body limit, token identification."""
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
    return middleware


async def _root(request: Request) -> RedirectResponse:
    return RedirectResponse("/graphql")


def app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory`` (``execgraph serve``'s workers): settings from
    EXECGRAPH_* environment variables, and the server process's garbage-collector policy."""
    return create_app(Settings(), tune_gc=True)  # store and the rest come from the environment
