"""The way out of every operation: unexpected errors masked, every error given its code.

An unexpected exception may carry paths, class names or record content. The client gets a
generic message with a request id and ``extensions.code = INTERNAL_SERVER_ERROR``; the log gets
the full traceback once, under that id.

graphql-core's own errors carry no code: a syntax error, a document that does not fit the
schema, a variable value that does not fit its type. They get one here
(:func:`request_error_code`), so that every error a client sees says what went wrong in a
word it can switch on. This runs only for results with errors, never on a clean answer.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types.execution import PreExecutionError

from graph.errors import ErrorCode, ExpectedError

log = logging.getLogger("execgraph.errors")


def is_unexpected(error: GraphQLError) -> bool:
    """Whether an error must be hidden from the client."""
    original = error.original_error
    # No original error: a parse or validation error about the query the client sent. An
    # operation name naming nothing is one too (Strawberry's error, over the WebSocket).
    expected = ExpectedError | GraphQLError | CannotGetOperationTypeError
    return original is not None and not isinstance(original, expected)


def request_error_code(error: GraphQLError, *, executed: bool) -> ErrorCode:
    """The code of an error raised without one; ``executed``: whether execution began.

    Syntax errors are parse failures (the token limit is one: graphql-core stops parsing
    with a syntax error); other errors before execution are validation failures (the limits'
    own rules tag theirs, see :mod:`graph.api.extensions.limits`); errors of an execution at no
    field are variable values that do not fit their types; an uncoded error at a field is the
    server's.
    """
    if isinstance(error.original_error, CannotGetOperationTypeError):
        return ErrorCode.OPERATION_RESOLUTION_FAILURE
    if isinstance(error, GraphQLSyntaxError):
        if "Document contains more than" in error.message:
            return ErrorCode.TOO_MANY_TOKENS
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.path is not None:
        return ErrorCode.INTERNAL_SERVER_ERROR
    if not executed:
        return ErrorCode.GRAPHQL_VALIDATION_FAILED
    return ErrorCode.BAD_USER_INPUT


def with_code(error: GraphQLError, code: ErrorCode) -> GraphQLError:
    """``error``, carrying ``code`` unless it has one already."""
    if error.extensions is None:
        error.extensions = {"code": code}
    else:
        error.extensions.setdefault("code", code)
    return error


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's MaskErrors, masking only unexpected errors and logging each once.

    Used as the base of :class:`graph.api.extensions.limits.QueryGuard` (one extension does both:
    Strawberry's per-request bookkeeping grows with every extension that has a hook).
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def _process_result(self, result: object) -> None:
        # The base class asks ``isinstance(result, <runtime-checkable protocol>)``, which costs
        # more than the rest of this hook on every request; an attribute lookup says the same.
        errors = getattr(result, "errors", None)
        if errors:
            executed = not isinstance(result, PreExecutionError)
            processed = self._process_errors(errors)
            for error in processed:
                if not (error.extensions and "code" in error.extensions):
                    with_code(error, request_error_code(error, executed=executed))
            result.errors = processed  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context: Any = self.execution_context.context
        request_id = str(getattr(context, "request_id", "-"))
        log.error(
            "unexpected error in request %s at %s",
            request_id,
            ".".join(str(p) for p in error.path or ()) or "-",
            exc_info=error.original_error,
        )
        return GraphQLError(
            f"Internal server error (request {request_id}); it has been logged.",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR, "requestId": request_id},
        )
