"""The Query root: field declarations and their documentation; work is in graph.api.resolvers."""

from __future__ import annotations

from typing import Annotated

import strawberry

from graph.access.permissions import requires
from graph.access.tokens import Role
from graph.api import resolvers
from graph.api.context import Info
from graph.api.paging import DEFAULT_PAGES
from graph.api.types.connection import ExecutionConnection, ItemConnection
from graph.api.types.enums import ExecutionOrder
from graph.api.types.execution import Execution
from graph.api.types.export import ExportJob
from graph.api.types.inputs import ExecutionFilter, ItemFilter
from graph.api.types.node import Node
from graph.api.types.stats import StorageStats

_FIRST = strawberry.argument(
    description="Page size from the start (or after 'after'); "
    f"default {DEFAULT_PAGES.default}, at most {DEFAULT_PAGES.maximum}."
)
_AFTER = strawberry.argument(description="Cursor to continue after (edges.cursor, endCursor).")
_LAST = strawberry.argument(
    description="Page size from the end (or before 'before'); not together with 'first'."
)
_BEFORE = strawberry.argument(description="Cursor to page back from (startCursor).")


@strawberry.type(
    description="Read access to the execution records (role reader; exportJob: researcher)."
)
class Query:
    @strawberry.field(
        description="One run by its execution id; null when there is no such run.",
        extensions=requires(Role.READER),
    )
    def execution(
        self,
        info: Info,
        execution_id: Annotated[
            str, strawberry.argument(description="e.g. exec_20251103_205239_896e054c")
        ],
    ) -> Execution | None:
        return resolvers.resolve_execution(info, execution_id)

    @strawberry.field(
        description="Runs, filtered and ordered, in cursor pages (Relay).",
        extensions=requires(Role.READER),
    )
    def executions(
        self,
        info: Info,
        filter: Annotated[
            ExecutionFilter | None, strawberry.argument(description="Which runs to list.")
        ] = None,
        order_by: Annotated[
            ExecutionOrder | None,
            strawberry.argument(description="Order of the runs; null means TIMESTAMP_DESC."),
        ] = ExecutionOrder.TIMESTAMP_DESC,
        first: Annotated[int | None, _FIRST] = None,
        after: Annotated[str | None, _AFTER] = None,
        last: Annotated[int | None, _LAST] = None,
        before: Annotated[str | None, _BEFORE] = None,
    ) -> ExecutionConnection:
        return resolvers.resolve_executions(
            info, filter, order_by or ExecutionOrder.TIMESTAMP_DESC, first, after, last, before
        )

    @strawberry.field(
        description="Items across all runs: newest run first, then in the run's order.",
        extensions=requires(Role.READER),
    )
    async def items(
        self,
        info: Info,
        filter: Annotated[
            ItemFilter | None, strawberry.argument(description="Which items to list.")
        ] = None,
        execution_filter: Annotated[
            ExecutionFilter | None,
            strawberry.argument(description="Only items of runs matching this filter."),
        ] = None,
        first: Annotated[int | None, _FIRST] = None,
        after: Annotated[str | None, _AFTER] = None,
        last: Annotated[int | None, _LAST] = None,
        before: Annotated[str | None, _BEFORE] = None,
    ) -> ItemConnection:
        return await resolvers.resolve_items(
            info, filter, execution_filter, first, after, last, before
        )

    @strawberry.field(
        description="Figures about the store, and counts for filter sidebars.",
        extensions=requires(Role.READER),
    )
    def storage_stats(
        self,
        info: Info,
        filter: Annotated[
            ExecutionFilter | None,
            strawberry.argument(description="Count only runs matching this filter."),
        ] = None,
    ) -> StorageStats:
        return resolvers.resolve_storage_stats(info, filter)

    @strawberry.field(
        description="An export job by id; null when unknown or older than a day (role researcher).",
        extensions=requires(Role.RESEARCHER),
    )
    def export_job(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The id exportExecutions returned.")
        ],
    ) -> ExportJob | None:
        job = info.context.state.exports.get(str(id))
        return None if job is None else ExportJob.from_state(job)

    @strawberry.field(
        description="Any object by its global id; null when it does not exist.",
        extensions=requires(Role.READER),
    )
    async def node(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="A global id from an id field.")
        ],
    ) -> Node | None:
        return await resolvers.resolve_node(info, id)
