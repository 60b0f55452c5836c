"""Every ``extensions.code`` the server sends, and the expected errors that carry them.

At the bottom of :mod:`graph`: the API, the services, access checks, the HTTP side and the CLI
all raise or answer with these; it imports nothing of the project.

:class:`ErrorCode` is the one list of codes (the README's "Error codes" paragraph mirrors it).
Resolvers raise the :class:`ExpectedError` subclasses; graphql-core's own parse, validation and
variable errors get their code on the way out
(:func:`graph.api.extensions.masking.request_error_code`); HTTP refusals get theirs from
:mod:`graph.server.middleware`. Anything raised that is none of these is unexpected:
:mod:`graph.api.extensions.masking` hides it from the client and logs it once in full.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from graphql import GraphQLError


class ErrorCode(StrEnum):
    """The codes clients switch on (``errors[].extensions.code``)."""

    # Raised by resolvers and limits, in ``200`` answers next to data or ``null`` fields.
    BAD_USER_INPUT = "BAD_USER_INPUT"
    """An argument or variable value the client can correct."""
    NOT_FOUND = "NOT_FOUND"
    """Something named does not exist or can no longer be read (also: unknown URL, 404)."""
    UNAUTHENTICATED = "UNAUTHENTICATED"
    """No valid token (401 over HTTP)."""
    FORBIDDEN = "FORBIDDEN"
    """The token's role may not do this (403 for downloads; introspection in production)."""
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    """The answer would hold more objects, items or record-file bytes than the budget; nothing
    (more) was built: refused before execution, or at the first run over the item budget."""
    TIMEOUT = "TIMEOUT"
    """The query ran past the time limit and was stopped."""
    SLOW_CONSUMER = "SLOW_CONSUMER"
    """A subscription fell too far behind and was ended."""
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    """The store directory is missing: the index is served as it was; retry when it is back."""
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    """Anything unexpected (masked, with a request id; logged once in full)."""
    # The document itself, refused before anything runs.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    """The document is not valid GraphQL syntax."""
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    """The document does not fit the schema (unknown field, wrong argument type, ...)."""
    OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
    """``operationName`` names no operation of the document, or several need a name."""
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    """Fields (or introspection) nest deeper than the depth limit."""
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    """More aliases than the alias limit."""
    TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
    """More tokens than the token limit (parsing stopped)."""
    # Refusals of the HTTP request, before GraphQL sees it.
    BAD_REQUEST = "BAD_REQUEST"
    """Not a GraphQL-over-HTTP request we take: body not JSON or not an object, no ``query``,
    wrongly typed parameters, batches, operations over GET, subscriptions over HTTP."""
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    """An HTTP method the path does not answer (405, with ``Allow``)."""
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    """``Accept`` lists neither ``application/graphql-response+json`` nor JSON (406)."""
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    """The body is over the size limit (413)."""
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    """A POST body that is not ``application/json`` (415)."""
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    """The request head did not arrive within the header timeout (408; then closed)."""
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    """The server process has too many open connections (503, ``Retry-After``; then closed)."""


class ExpectedError(GraphQLError):
    """Base of errors whose message is written for the client."""

    code = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(ExpectedError):
    """An argument the client can correct: bad cursor, page size, filter value, id shape."""

    code = ErrorCode.BAD_USER_INPUT


class NotFound(ExpectedError):
    """Something the client named does not exist (or no longer can be read)."""

    code = ErrorCode.NOT_FOUND


class Unauthenticated(ExpectedError):
    """No token, or one this server does not know (send ``Authorization: Bearer <token>``)."""

    code = ErrorCode.UNAUTHENTICATED


class Forbidden(ExpectedError):
    """The token is valid but its role may not do this (the message names the role needed)."""

    code = ErrorCode.FORBIDDEN


class QueryTooComplex(ExpectedError):
    """The query could return more objects than the server's budget; nothing was executed."""

    code = ErrorCode.QUERY_TOO_COMPLEX


class Timeout(ExpectedError):
    """The query ran longer than the server allows and was stopped; nothing is returned."""

    code = ErrorCode.TIMEOUT


class SlowConsumer(ExpectedError):
    """A subscription that fell too far behind was ended; subscribe again to resume."""

    code = ErrorCode.SLOW_CONSUMER


class StoreUnavailable(ExpectedError):
    """The store directory is missing (moved, unmounted, being restored); ``/healthz`` says
    since when. Queries still answer from the index; a sync waits for the store."""

    code = ErrorCode.STORE_UNAVAILABLE
