"""Download routes for export files and the XML export's schema.

The route takes only the token from the URL; ``exports.service.resolve_export`` refuses anything
that is not exactly a generated token, and expired or missing exports, without touching the
file system for malformed input. A file is only ever downloadable whole: exports are renamed into
place when complete.

Downloads need the researcher role, like the export itself: the link alone is not enough, since
links end up in browser histories, chat messages and proxy logs. The XSD is public: it describes
the format and holds no data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from exports.registry import xsd_path
from exports.service import resolve_export
from graph.access.permissions import principal_of
from graph.access.tokens import Role
from graph.api.context import AppState
from graph.server.middleware import error_response, forbidden, unauthenticated


def download_export(state: AppState) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for ``GET /exports/{token}``."""

    async def endpoint(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:
            return unauthenticated("downloads need a token: send 'Authorization: Bearer <token>'")
        if not principal.may(Role.RESEARCHER):
            return forbidden("downloads need the researcher role (or a higher one)")
        token = request.path_params["token"]
        result = resolve_export(state.settings.export_path, token)
        if result is None:
            return error_response(404, "no such export (the link is wrong or the export expired)")
        return FileResponse(
            result.path,
            media_type=result.mime_type,
            filename=result.download_name,
            content_disposition_type="attachment",
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )

    return endpoint


async def export_schema(request: Request) -> Response:
    """``GET /exports/schema.xsd``: the XSD every XML export validates against."""
    return FileResponse(xsd_path(), media_type="application/xml", filename="execgraph-export.xsd")
