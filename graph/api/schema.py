"""Assembly of the Strawberry schema from the roots and extensions.

Extensions: the shared parser and validation caches, and one guard
(:class:`graph.api.extensions.limits.QueryGuard`) that enforces the limits and, on the way out,
masks unexpected errors; the limits' typed errors (``TIMEOUT``, ``QUERY_TOO_COMPLEX``) are in place
before the masking looks at the result.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from graph.api.extensions.limits import limit_extensions
from graph.api.mutation import Mutation
from graph.api.query import Query
from graph.api.subscription import Subscription
from graph.api.types.execution import Execution, ExecutionItem
from graph.api.types.scalars import SCALAR_MAP
from graph.settings import Limits

_SUGGESTION = re.compile(r"\s*Did you mean\b.*$", re.DOTALL)


class ExecgraphSchema(strawberry.Schema):
    """The schema; errors are logged by the masking extension, once, not here again.

    In production mode every "Did you mean ...?" is cut from error messages (field, argument,
    type, enum value and input field suggestions alike): they would spell out the schema to a
    client that may not introspect it.
    """

    def __init__(self, *args: Any, hide_suggestions: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        if self.hide_suggestions:
            for error in errors:
                error.message = _SUGGESTION.sub("", error.message)


class SafeParserCache(ParserCache):
    """Strawberry's parser cache, leaving a document that does not parse to Strawberry.

    The cache parses in its hook, where a syntax error (or the token limit) escapes Strawberry's
    own error handling: harmless over HTTP, but over a WebSocket the operation died with a
    traceback in the log instead of an answer. A document that fails here is left unparsed;
    Strawberry parses it again inside its handling and answers with the error.
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        try:
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        except GraphQLError:
            ctx.graphql_document = None
        yield


class AcyclicExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, freed by reference counting when a request ends.

    graphql-core's executor keeps bound methods of itself in ``async_helpers``: a reference
    cycle that only the garbage collector can free, and with it everything the execution
    reached (the request, its context, headers, variables: about 40 objects for the smallest
    query, many more for a page). The collector then had thousands of them to free at once, in
    the middle of some later request, which showed in the tail latency of the fastest ones. The
    attribute is dropped once the response is built. Resolve infos keep their own reference to
    the helpers; sibling work that graphql-core abandoned after an error (settled in the
    background, its outcome discarded) stops at its next field instead of running on unseen.
    """

    def build_response(self, data: dict[str, Any] | None) -> Any:
        try:
            return super().build_response(data)
        finally:
            with contextlib.suppress(AttributeError):
                del self.async_helpers


def build_schema(limits: Limits | None = None, **kwargs: Any) -> ExecgraphSchema:
    """Build the public schema (the one ``schema.graphql`` publishes) enforcing ``limits``
    (a server passes its :class:`~graph.settings.Settings`; default: the default limits)."""
    limits = limits or Limits()
    return ExecgraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Execution, ExecutionItem],
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=limits.production),
        extensions=[
            lambda: SafeParserCache(maxsize=256),  # the LRU itself is module-level, shared
            lambda: ValidationCache(maxsize=256),
            *limit_extensions(limits),
        ],
        hide_suggestions=limits.production,
        execution_context_class=AcyclicExecutionContext,
        **kwargs,
    )


def print_sdl() -> str:
    """The schema in SDL, as committed in ``schema.graphql``."""
    return build_schema().as_str() + "\n"
