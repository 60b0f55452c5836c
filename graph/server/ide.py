"""The in-browser GraphiQL explorer, served entirely by execgraph itself.

Strawberry's built-in GraphiQL page loads React, GraphiQL and the explorer plugin
from a public CDN, so it shows a blank "Loading..." on a machine without internet
access. execgraph must work offline, so the same front-end packages are vendored
under ``graph/static/graphiql/assets`` (shipped as package data, see
``graph/static/graphiql/VENDORED.md`` for versions and provenance) and this module
renders our own page that refers only to them:

* :func:`graphiql_html` builds the page; the endpoint (:mod:`graph.server.endpoint`)
  returns it from ``render_graphql_ide``.
* :func:`graphiql_assets_app` serves :data:`ASSET_DIR`; the application mounts it
  at the ``assets_url`` given to :func:`graphiql_html` (``/graphiql-assets`` by
  default).

The page carries no inline script or style: the settings travel in a JSON block
read by ``execgraph/ide.js``, so a strict Content-Security-Policy applies
(:func:`graphiql_headers`): scripts, styles and fetches from the page's own origin
only, plus its WebSocket for subscriptions; fonts and images also as ``data:``
URLs (GraphiQL's stylesheet embeds its fonts); no framing, no referrer.
Every asset URL carries a Subresource Integrity hash and a ``v`` fingerprint of
the file's content, which lets the assets be cached for a year without ever
serving a stale copy after an upgrade.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from functools import cache
from pathlib import Path
from string import Template
from typing import Final
from urllib.parse import parse_qs

from starlette.datastructures import URL
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

__all__ = [
    "ASSET_DIR",
    "DEFAULT_QUERY",
    "SCRIPTS",
    "STYLESHEETS",
    "graphiql_assets_app",
    "graphiql_headers",
    "graphiql_html",
]

ASSET_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "static" / "graphiql" / "assets"
"""The directory of files the page loads; serve it at the page's ``assets_url``."""

_TEMPLATE_PATH: Final[Path] = ASSET_DIR.parent / "page.html"

STYLESHEETS: Final[tuple[str, ...]] = (
    "graphiql-3.8.3/graphiql.min.css",
    "graphiql-plugin-explorer-1.0.2/style.css",
    "execgraph/ide.css",
)
"""The stylesheets the page links, relative to :data:`ASSET_DIR`, in order."""

SCRIPTS: Final[tuple[str, ...]] = (
    "react-18.2.0/react.production.min.js",
    "react-dom-18.2.0/react-dom.production.min.js",
    "graphiql-3.8.3/graphiql.min.js",
    "graphiql-plugin-explorer-1.0.2/index.umd.js",
    "execgraph/ide.js",
)
"""The scripts the page loads, relative to :data:`ASSET_DIR`, in order (each one
needs the globals of those before it)."""

DEFAULT_QUERY: Final[str] = """\
# Welcome to execgraph!
#
# execgraph records every run ("execution") of the
# AI art-education pipeline: which configuration ran,
# when, and which items it produced. This GraphQL API
# lets you query, explore and export those records.
#
# Run a query with Ctrl-Enter or the play button.
# Ctrl-Space completes names from the schema, the Docs
# and Explorer panes on the left browse it, and the
# Headers tab below sends extra request headers.
#
# This query lists the five newest runs:
query NewestExecutions {
  executions(first: 5) {
    edges {
      node {
        executionId
        configName
        timestamp
        itemCount
      }
    }
  }
}
"""
"""The query the editor opens with when the address bar names none."""

_CACHE_FOREVER: Final = "public, max-age=31536000, immutable"
_REVALIDATE: Final = "no-cache"


@cache
def _fingerprint(path: Path, mtime_ns: int, size: int) -> tuple[str, str]:
    """Return the SRI value and a short content fingerprint of one file.

    The modification time and size are part of the cache key only, so that a
    file edited while the server runs is hashed again.
    """
    digest = hashlib.sha384(path.read_bytes()).digest()
    integrity = "sha384-" + base64.b64encode(digest).decode("ascii")
    version = digest.hex()[:16]
    return integrity, version


def _asset_fingerprint(relative: str) -> tuple[str, str]:
    path = ASSET_DIR / relative
    stat = path.stat()
    return _fingerprint(path, stat.st_mtime_ns, stat.st_size)


def _asset_url(assets_url: str, relative: str) -> tuple[str, str]:
    """Return the escaped ``(url, integrity)`` attribute values of one asset."""
    integrity, version = _asset_fingerprint(relative)
    url = f"{assets_url.rstrip('/')}/{relative}?v={version}"
    return html.escape(url, quote=True), integrity


def _json_for_script(value: object) -> str:
    """Serialise ``value`` so it cannot end the ``<script>`` element holding it."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _template() -> Template:
    return Template(_TEMPLATE_PATH.read_text(encoding="utf-8"))


_CSP: Final[tuple[str, ...]] = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "font-src 'self' data:",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)
_HOST: Final = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def graphiql_headers(url: URL) -> dict[str, str]:
    """The security headers of the page served at ``url``.

    ``connect-src`` names the page's WebSocket origin as well as ``'self'``: CSP Level 3
    lets ``'self'`` match ``ws:`` on the same host, but not every browser does. The host comes
    from the request's ``Host`` header, so it is only written when it is a plain host name or
    address (anything else cannot inject a directive; subscriptions then fall back to 'self').
    """
    connect = "connect-src 'self'"
    if _HOST.fullmatch(url.netloc):
        connect += f" {'wss' if url.scheme == 'https' else 'ws'}://{url.netloc}"
    return {
        "Content-Security-Policy": "; ".join((*_CSP, connect)),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": _REVALIDATE,
    }


def graphiql_html(
    *,
    endpoint: str = "/graphql",
    assets_url: str = "/graphiql-assets",
    title: str = "execgraph GraphiQL",
    default_query: str | None = None,
) -> str:
    """Return the GraphiQL page, which loads its assets only from ``assets_url``.

    ``endpoint`` is where queries are POSTed; it is resolved against the page's
    own address, and subscriptions use the ``graphql-transport-ws`` protocol on
    the same path (``ws:``/``wss:`` to match ``http:``/``https:``).
    ``default_query`` replaces :data:`DEFAULT_QUERY` as the editor's initial
    text when the address bar carries no ``query`` parameter.
    """
    stylesheets = []
    for relative in STYLESHEETS:
        url, integrity = _asset_url(assets_url, relative)
        stylesheets.append(f'    <link rel="stylesheet" href="{url}" integrity="{integrity}" />')
    scripts = []
    for relative in SCRIPTS:
        url, integrity = _asset_url(assets_url, relative)
        scripts.append(f'    <script src="{url}" integrity="{integrity}"></script>')
    config = {
        "endpoint": endpoint,
        "defaultQuery": DEFAULT_QUERY if default_query is None else default_query,
    }
    return _template().substitute(
        title=html.escape(title),
        stylesheets="\n".join(stylesheets),
        scripts="\n".join(scripts),
        config=_json_for_script(config),
    )


class _AssetFiles(StaticFiles):
    """Static files whose fingerprinted URLs may be cached for a year.

    A request whose ``v`` parameter matches the file's current fingerprint (as
    in every URL :func:`graphiql_html` writes) may be cached for good; any other
    request is answered with ``no-cache`` so browsers revalidate via the ETag.
    """

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        requested = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [])
        path = Path(full_path)
        _, version = _fingerprint(path, stat_result.st_mtime_ns, stat_result.st_size)
        fresh = requested == [version]
        response.headers["Cache-Control"] = _CACHE_FOREVER if fresh else _REVALIDATE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def graphiql_assets_app() -> StaticFiles:
    """Return an ASGI app serving :data:`ASSET_DIR`, to mount at ``assets_url``.

    For example ``Mount("/graphiql-assets", app=graphiql_assets_app())``.
    """
    return _AssetFiles(directory=ASSET_DIR)
