"""Assembly of the Strawberry schema from the roots and extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graph.masking import MaskUnexpectedErrors
from graph.mutation import Mutation
from graph.query import Query
from graph.subscription import Subscription
from graph.types.execution import Execution, ExecutionItem
from graph.types.scalars import SCALAR_MAP


class ExecgraphSchema(strawberry.Schema):
    """The schema; errors are logged by the masking extension, once, not here again."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(**kwargs: Any) -> ExecgraphSchema:
    """Build the public schema (the one ``schema.graphql`` publishes)."""
    return ExecgraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Execution, ExecutionItem],
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[
            MaskUnexpectedErrors,
            lambda: ParserCache(maxsize=256),  # the LRU itself is module-level, shared
            lambda: ValidationCache(maxsize=256),
        ],
        **kwargs,
    )


def print_sdl() -> str:
    """The schema in SDL, as committed in ``schema.graphql``."""
    return build_schema().as_str() + "\n"
