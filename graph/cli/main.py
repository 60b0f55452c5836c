"""The ``execgraph`` command: serve, demo, index, schema.

Every option also reads an ``EXECGRAPH_*`` environment variable (``--store`` <- EXECGRAPH_STORE),
as the server's settings do.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import Any

import click
import uvicorn

from graph import __version__
from graph.cli.token import access_environment, check_access
from graph.server.connections import PROTOCOL as CONNECTION_PROTOCOL
from graph.server.connections import WS_PROTOCOL
from graph.services.progress import progress_bar
from graph.settings import Settings, cache_root
from storage.catalog import Catalog
from storage.index import RecordIndex, StoreNotFoundError

DEMO_COUNT = 400
#: What ``serve --demo`` leaves in its store once written; a store with another text (an older
#: demo, without the README's showcase run) is written again.
DEMO_MARKER = "demo store written by execgraph serve --demo (2: with the README's showcase run)\n"

_store_option = click.option(
    "--store",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="EXECGRAPH_STORE",
    help="Directory of <execution_id>.json record files (never written to).",
)
_index_option = click.option(
    "--index",
    "index_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="EXECGRAPH_INDEX",
    default=None,
    help="Index file (default: one per store in the user cache folder).",
)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def sync_index(settings: Settings, *, quiet: bool = False) -> None:
    """Open and sync the index of ``settings.store``, showing progress."""
    index = RecordIndex(settings.store, settings.index_path, max_file_bytes=settings.max_file_bytes)
    try:
        index.open()
    except StoreNotFoundError as exc:
        _fail(str(exc))
    try:
        with progress_bar() as progress:
            task = progress.add_task("Indexing records", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = index.sync(advance)
        stats = Catalog(index, max_file_bytes=settings.max_file_bytes).stats()
        served, invalid = stats.totals()[0], len(stats.invalid())
    finally:
        index.close()
    if not quiet:
        click.echo(
            f"Index {settings.index_path}: {report.scanned} files scanned; this sync "
            f"{report.added} added, {report.updated} updated, {report.removed} removed; "
            f"{served} runs served, {invalid} files not servable "
            "(storageStats { invalidRecords } says why).",
            err=True,
        )


def demo_store_path() -> Path:
    """Where ``serve --demo`` keeps its generated store."""
    return cache_root() / "demo-store"


def ensure_demo_store(directory: Path, count: int = DEMO_COUNT) -> None:
    """Create the demo store once (it is reused on later runs).

    It holds ``count`` generated records, a few malformed files and the run the README's
    examples name (:data:`storage.demo.SHOWCASE_ID`).
    """
    from storage.demo import write_demo_store

    marker = directory / ".execgraph-demo"
    if marker.is_file() and marker.read_text(encoding="utf-8") == DEMO_MARKER:
        return
    directory.mkdir(parents=True, exist_ok=True)
    with progress_bar() as progress:
        task = progress.add_task("Writing demo records", total=count)
        write_demo_store(
            directory,
            count,
            showcase=True,
            progress=lambda n: progress.update(task, completed=n),
        )
    marker.write_text(DEMO_MARKER, encoding="utf-8")


def check_port(host: str, port: int) -> None:
    """Refuse (ClickException) an address the server could not listen on, before anything is
    printed as if it worked: a busy port names itself and says to pass ``--port``.

    The socket is opened as uvicorn opens it (IPv6 when the host has a colon, SO_REUSEADDR) and
    closed at once; uvicorn binds again when it starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _fail(
                    f"port {port} on {host} is already in use (another execgraph server or "
                    f"another program); pass --port N to serve on another port, e.g. "
                    f"--port {port + 1 if port < 65535 else 8000}"
                )
            _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@click.group()
@click.version_option(__version__, prog_name="execgraph")
@click.option("--log-level", default="info", envvar="EXECGRAPH_LOG_LEVEL", show_default=True)
def main(log_level: str) -> None:
    """execgraph: a GraphQL API over a directory of pipeline execution records."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Font subsetting narrates every glyph at INFO; only its warnings matter to users.
    logging.getLogger("fontTools").setLevel(logging.WARNING)


@main.command()
@_store_option
@_index_option
@click.option("--demo", is_flag=True, help="Serve a generated demo store (no data needed).")
@click.option("--host", default="127.0.0.1", envvar="EXECGRAPH_HOST", show_default=True)
@click.option(
    "--port",
    default=8000,
    type=click.IntRange(0, 65535),
    envvar="EXECGRAPH_PORT",
    show_default=True,
)
@click.option("--workers", default=1, type=click.IntRange(1, 64), show_default=True)
@click.option(
    "--watch-mode",
    type=click.Choice(["auto", "poll"]),
    default="auto",
    envvar="EXECGRAPH_WATCH_MODE",
    show_default=True,
    help="'poll' for network mounts without file-system notifications.",
)
@click.option(
    "--tokens-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="EXECGRAPH_TOKENS_FILE",
    default=None,
    help="Require bearer tokens; their hashes are in this file (`execgraph token create`).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    envvar="EXECGRAPH_INSECURE_NO_AUTH",
    help="Serve without tokens on a non-loopback address (trusted networks only).",
)
@click.option(
    "--production",
    is_flag=True,
    envvar="EXECGRAPH_PRODUCTION",
    help="No field suggestions in errors; introspection only with a valid token.",
)
def serve(
    store: Path | None,
    index_path: Path | None,
    demo: bool,
    host: str,
    port: int,
    workers: int,
    watch_mode: str,
    tokens_file: Path | None,
    insecure_no_auth: bool,
    production: bool,
) -> None:
    """Serve the GraphQL API (GraphiQL at http://HOST:PORT/graphql)."""
    check_port(host, port)  # before the demo store, the index and the banner
    if demo:
        store = store or demo_store_path()
        ensure_demo_store(store)
    if store is None:
        _fail("pass --store DIR (or set EXECGRAPH_STORE), or --demo to try it on demo data")
    assert store is not None
    env: dict[str, Any] = {"store": store, "host": host, "port": port, "watch_mode": watch_mode}
    if index_path is not None:
        env["index"] = index_path
    if tokens_file is not None:
        env["tokens_file"] = tokens_file
    env.update(insecure_no_auth=insecure_no_auth, production=production)
    try:
        settings = Settings(**env)
    except ValueError as exc:
        _fail(f"invalid settings: {exc}")
    access = check_access(settings)
    sync_index(settings)
    # Workers rebuild the app from the environment (uvicorn needs an import string for them).
    os.environ["EXECGRAPH_STORE"] = str(settings.store)
    os.environ["EXECGRAPH_INDEX"] = str(settings.index_path)
    os.environ["EXECGRAPH_WATCH_MODE"] = settings.watch_mode
    os.environ["EXECGRAPH_STARTUP_SYNC"] = "false"  # synced just above
    os.environ.update(access_environment(settings))
    click.echo(f"GraphiQL: http://{host}:{port}/graphql  (store: {settings.store})", err=True)
    click.echo(access, err=True)
    uvicorn.run(
        "graph.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # Head, body and idle timeouts and the connection cap (graph.server.connections).
        http=CONNECTION_PROTOCOL,
        ws=WS_PROTOCOL,
        timeout_keep_alive=settings.idle_timeout_s,  # type: ignore[arg-type]
        loop="auto",
        lifespan="on",
        ws_max_size=settings.max_body_bytes,
    )


@main.command()
@_store_option
@click.option("--count", default=DEMO_COUNT, type=click.IntRange(1, 10_000_000), show_default=True)
@click.option("--seed", default=0, type=int, show_default=True)
@click.option("--no-malformed", is_flag=True, help="Write only valid records.")
def demo(store: Path | None, count: int, seed: int, no_malformed: bool) -> None:
    """Write realistic demo records (every run shape, several languages) into a store."""
    from storage.demo import write_demo_store

    if store is None:
        _fail("pass --store DIR")
    assert store is not None
    store.mkdir(parents=True, exist_ok=True)
    with progress_bar() as progress:
        task = progress.add_task("Writing demo records", total=count)
        summary = write_demo_store(
            store,
            count,
            seed=seed,
            malformed=not no_malformed,
            progress=lambda n: progress.update(task, completed=n),
        )
    click.echo(f"Wrote {summary} into {store}", err=True)


@main.command()
@_store_option
@_index_option
def index(store: Path | None, index_path: Path | None) -> None:
    """Build or sync the index of a store (with a progress bar)."""
    if store is None:
        _fail("pass --store DIR")
    assert store is not None
    settings = Settings(store=store, index=index_path)
    sync_index(settings)


@main.command()
def schema() -> None:
    """Print the GraphQL schema (SDL), as published in schema.graphql."""
    from graph.api.schema import print_sdl

    click.echo(print_sdl(), nl=False)


def _register() -> None:
    from graph.cli.export import export_command

    main.add_command(export_command)
    from graph.cli.bench import bench_command

    main.add_command(bench_command)
    from graph.cli.token import token_command

    main.add_command(token_command)


_register()
