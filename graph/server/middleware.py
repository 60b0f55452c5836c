"""The HTTP layer: the media type of answers, GraphQL-shaped refusals, and the ASGI layers in
front of the routes (request body size, bearer-token identification).

**Media types** (GraphQL over HTTP): an answer is ``application/graphql-response+json`` when the
client's ``Accept`` prefers it, and ``application/json`` otherwise (no ``Accept``, ``*/*``, or JSON
preferred), as legacy clients expect; :func:`response_media_type` decides. With the new type the
status code tells the outcome (4xx for a request error, see :mod:`graph.server.endpoint`); with
JSON a well-formed request is answered 200, errors in the body.

**Refusals** (:func:`error_response`) are GraphQL-shaped in both: ``{"errors": [{"message": ...,
"extensions": {"code": ...}}]}``, plus ``"data": null`` in ``application/json`` (as it always was).

``BodyLimit`` answers 413 before anything parses a body that is too large: at once when
``Content-Length`` says so, and otherwise as soon as the streamed bytes pass the limit (a chunked
body has no length). It is plain ASGI so that it sees the bytes before Starlette or Strawberry
buffer them.

``BearerBackend`` plugs our tokens into Starlette's ``AuthenticationMiddleware``: it sets
``request.user`` to a :class:`graph.access.tokens.Principal`. It only identifies; what each route
or field needs is decided there (:mod:`graph.access.permissions`, :mod:`graph.server.downloads`,
:mod:`graph.server.endpoint`).
A token that is presented but unknown is refused at once (401); a missing one is left to the
route, since GraphiQL's page, its assets, ``/healthz`` and the XSD are public.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import orjson
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.access.tokens import OPEN, Principal, TokenRegistry, bearer_token
from graph.errors import ErrorCode

REALM: Final = 'Bearer realm="execgraph"'

JSON: Final = "application/json"
"""The legacy media type of GraphQL answers: 200 for every well-formed request."""
GRAPHQL_RESPONSE: Final = "application/graphql-response+json"
"""The GraphQL-over-HTTP media type: the status code tells request errors (4xx) apart."""
GRAPHQL_RESPONSE_UTF8: Final = GRAPHQL_RESPONSE + "; charset=utf-8"

#: The code of a refusal by its HTTP status (Strawberry's and Starlette's refusals carry none).
STATUS_CODES: Final[dict[int, ErrorCode]] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}

_SPECIFIC, _SUBTYPES, _ANY = 3, 2, 1  # how closely a media range names a type


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer a client sending ``accept`` in, or None when it takes neither.

    The highest quality wins (RFC 9110: a type's quality is that of the most specific range
    naming it); between equal qualities the one named more specifically, then the one listed
    first ("the highest priority media type listed", GraphQL over HTTP). ``*/*`` and a missing
    header mean JSON, the legacy default that clients without ``Accept`` rely on.
    """
    if not accept:
        return JSON
    return _negotiate(accept)


@lru_cache(maxsize=128)
def _negotiate(accept: str) -> str | None:
    # For each type we serve: (quality, specificity, -position) of the range that decides it.
    best: dict[str, tuple[float, int, int]] = {}
    for position, media_range in enumerate(accept.lower().split(",")):
        name, *parameters = (part.strip() for part in media_range.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                with contextlib.suppress(ValueError):  # a malformed weight is ignored
                    quality = float(value)
        for served in (GRAPHQL_RESPONSE, JSON):
            if name == served:
                specificity = _SPECIFIC
            elif name == "application/*":
                specificity = _SUBTYPES
            elif name == "*/*":
                specificity = _ANY
            else:
                continue
            known = best.get(served)
            if known is None or specificity > known[1]:
                best[served] = (quality, specificity, -position)
    # A tie in all three (both named by the same wildcard) goes to JSON.
    acceptable = [(key, served == JSON, served) for served, key in best.items() if key[0] > 0]
    return max(acceptable)[2] if acceptable else None


#: The status of a GraphQL request error (no ``data``) in the GraphQL-over-HTTP type, by code;
#: any other code is 400 (parse, validation, limits, variables, unknown operation).
REQUEST_ERROR_STATUS: Final[dict[str, int]] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.INTERNAL_SERVER_ERROR: 500,
    ErrorCode.TIMEOUT: 504,
}


def request_error_status(response: Mapping[str, Any]) -> int | None:
    """The 4xx/5xx status of a GraphQL answer that is a request error, else None (200).

    A request error has no data and no error at a field: execution never began (parse,
    validation, a limit, variable values, the operation name) or was stopped as a whole
    (``TIMEOUT``). A ``null`` data with field errors is a partial answer: 200, per the spec.
    """
    errors = response.get("errors")
    if response.get("data") is not None or not errors:
        return None
    if any("path" in error for error in errors):
        return None
    code = (errors[0].get("extensions") or {}).get("code")
    return REQUEST_ERROR_STATUS.get(str(code), 400)


def error_response(
    status_code: int,
    message: str,
    code: ErrorCode | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    media_type: str | None = JSON,
) -> Response:
    """A GraphQL-shaped refusal with an HTTP status, in ``media_type`` (JSON when None).

    ``code`` defaults to the status's (:data:`STATUS_CODES`). In ``application/json`` the body
    keeps ``"data": null``, as it always had; the GraphQL-over-HTTP type has no ``data`` entry
    for a request that never ran.
    """
    error = {"message": message, "extensions": {"code": code or status_code_error(status_code)}}
    if media_type == GRAPHQL_RESPONSE:
        body: dict[str, object] = {"errors": [error]}
        content_type = GRAPHQL_RESPONSE_UTF8
    else:
        body = {"data": None, "errors": [error]}
        content_type = JSON
    return Response(orjson.dumps(body), status_code, headers, content_type)


def status_code_error(status_code: int) -> ErrorCode:
    """The code of a refusal with ``status_code`` and no code of its own."""
    default = ErrorCode.BAD_REQUEST if status_code < 500 else ErrorCode.INTERNAL_SERVER_ERROR
    return STATUS_CODES.get(status_code, default)


def refusal_for(
    accept: str | None,
    status_code: int,
    message: str,
    code: ErrorCode | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """:func:`error_response` in the media type a client sending ``accept`` asks for."""
    media_type = response_media_type(accept) or JSON
    return error_response(status_code, message, code, headers, media_type=media_type)


def unauthenticated(
    message: str, *, invalid_token: bool = False, media_type: str | None = JSON
) -> Response:
    """401 with ``extensions.code = UNAUTHENTICATED`` and a ``WWW-Authenticate`` challenge."""
    challenge = REALM + (', error="invalid_token"' if invalid_token else "")
    return error_response(
        401,
        message,
        ErrorCode.UNAUTHENTICATED,
        {"WWW-Authenticate": challenge},
        media_type=media_type,
    )


def forbidden(message: str) -> Response:
    """403 with ``extensions.code = FORBIDDEN``."""
    return error_response(403, message, ErrorCode.FORBIDDEN)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's exception handler: its 404s and 405s (and any other ``HTTPException``)
    GraphQL-shaped, with the headers they carry (``Allow``)."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException
        raise exc
    accept = request.headers.get("accept")
    return refusal_for(accept, exc.status_code, exc.detail, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """Starlette's last resort for an exception no one handled: GraphQL-shaped 500 (Starlette
    still logs the traceback)."""
    return refusal_for(request.headers.get("accept"), 500, "Internal server error; it is logged.")


class BearerBackend(AuthenticationBackend):
    """Starlette authentication backend reading ``Authorization: Bearer <token>``."""

    def __init__(self, registry: TokenRegistry) -> None:
        self.registry = registry

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if not self.registry.enabled:
            return AuthCredentials(OPEN.scopes), OPEN
        header = conn.headers.get("authorization")
        if header is None:
            return None
        token = bearer_token(header)
        principal = None if token is None else self.registry.lookup(token)
        if principal is None:
            raise AuthenticationError("the bearer token is not valid on this server")
        return credentials(principal)


def credentials(principal: Principal) -> tuple[AuthCredentials, BaseUser]:
    """What Starlette keeps in ``scope["auth"]`` and ``scope["user"]`` for ``principal``."""
    return AuthCredentials(principal.scopes), principal


def on_auth_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """``AuthenticationMiddleware``'s answer to an unknown or malformed token."""
    media_type = response_media_type(conn.headers.get("accept"))
    return unauthenticated(str(exc), invalid_token=True, media_type=media_type)


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes the limit."""


class BodyLimit:
    """Answer 413 to HTTP requests whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def too_large(self, scope: Scope) -> Response:
        message = f"the request body is larger than {self.max_bytes} bytes"
        return refusal_for(Headers(scope=scope).get("accept"), 413, message)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.too_large(scope)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await self.too_large(scope)(scope, receive, send)
