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


class SlowConsumer(ExpectedError):
    """A subscription that fell too far behind was ended; subscribe again to resume."""

    code = "SLOW_CONSUMER"
