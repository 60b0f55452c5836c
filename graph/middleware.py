"""ASGI layers in front of the routes: request body size and bearer-token identification.

``BodyLimit`` answers 413 before anything parses a body that is too large: at once when
``Content-Length`` says so, and otherwise as soon as the streamed bytes pass the limit (a chunked
body has no length). It is plain ASGI so that it sees the bytes before Starlette or Strawberry
buffer them.

``BearerBackend`` plugs our tokens into Starlette's ``AuthenticationMiddleware``: it sets
``request.user`` to a :class:`graph.auth.Principal`. It only identifies; what each route or field
needs is decided there (:mod:`graph.permissions`, :mod:`graph.downloads`, :mod:`graph.app`).
A token that is presented but unknown is refused at once (401); a missing one is left to the
route, since GraphiQL's page, its assets, ``/healthz`` and the XSD are public.
"""

from __future__ import annotations

from typing import Final

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.auth import OPEN, Principal, TokenRegistry, bearer_token

REALM: Final = 'Bearer realm="execgraph"'


def error_response(
    status_code: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A GraphQL-shaped error body (``{"data": null, "errors": [...]}``) with an HTTP status."""
    error: dict[str, object] = {"message": message}
    if code is not None:
        error["extensions"] = {"code": code}
    return JSONResponse({"data": None, "errors": [error]}, status_code, headers=headers)


def unauthenticated(message: str, *, invalid_token: bool = False) -> JSONResponse:
    """401 with ``extensions.code = UNAUTHENTICATED`` and a ``WWW-Authenticate`` challenge."""
    challenge = REALM + (', error="invalid_token"' if invalid_token else "")
    return error_response(401, message, "UNAUTHENTICATED", {"WWW-Authenticate": challenge})


def forbidden(message: str) -> JSONResponse:
    """403 with ``extensions.code = FORBIDDEN``."""
    return error_response(403, message, "FORBIDDEN")


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
    return unauthenticated(str(exc), invalid_token=True)


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes the limit."""


class BodyLimit:
    """Answer 413 to HTTP requests whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def too_large(self) -> Response:
        return error_response(
            413, f"the request body is larger than {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.too_large()(scope, receive, send)
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
            await self.too_large()(scope, receive, send)
