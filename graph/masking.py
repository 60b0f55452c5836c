"""Error masking: expected errors reach the client as they are; anything else is masked.

An unexpected exception may carry paths, class names or record content. The client gets a
generic message with a request id and ``extensions.code = INTERNAL_SERVER_ERROR``; the log gets
the full traceback once, under that id.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from graph.errors import ExpectedError

log = logging.getLogger("execgraph.errors")


def is_unexpected(error: GraphQLError) -> bool:
    """Whether an error must be hidden from the client."""
    original = error.original_error
    # No original error: a parse or validation error about the query the client sent.
    return original is not None and not isinstance(original, ExpectedError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    """Strawberry's MaskErrors, masking only unexpected errors and logging each once.

    Used as the base of :class:`graph.limits.QueryGuard` (one extension does both: Strawberry's
    per-request bookkeeping grows with every extension that has a hook).
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def _process_result(self, result: object) -> None:
        # The base class asks ``isinstance(result, <runtime-checkable protocol>)``, which costs
        # more than the rest of this hook on every request; an attribute lookup says the same.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

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
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
