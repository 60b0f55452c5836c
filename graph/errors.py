"""Expected errors, each with the ``extensions.code`` clients switch on.

Anything raised that is not one of these is unexpected: :mod:`graph.masking` hides it from the
client and logs it once in full.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError


class ExpectedError(GraphQLError):
    """Base of errors whose message is written for the client."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(ExpectedError):
    """An argument the client can correct: bad cursor, page size, filter value, id shape."""

    code = "BAD_USER_INPUT"


class NotFound(ExpectedError):
    """Something the client named does not exist (or no longer can be read)."""

    code = "NOT_FOUND"


class Unauthenticated(ExpectedError):
    """No token, or one this server does not know (send ``Authorization: Bearer <token>``)."""

    code = "UNAUTHENTICATED"


class Forbidden(ExpectedError):
    """The token is valid but its role may not do this (the message names the role needed)."""

    code = "FORBIDDEN"


class QueryTooComplex(ExpectedError):
    """The query could return more objects than the server's budget; nothing was executed."""

    code = "QUERY_TOO_COMPLEX"


class Timeout(ExpectedError):
    """The query ran longer than the server allows and was stopped; nothing is returned."""

    code = "TIMEOUT"


class SlowConsumer(ExpectedError):
    """A subscription that fell too far behind was ended; subscribe again to resume."""

    code = "SLOW_CONSUMER"
