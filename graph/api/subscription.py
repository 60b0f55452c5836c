"""The Subscription root: new and changed runs, pushed over ``graphql-transport-ws``.

Each event carries the run as ``executions`` would list it; a filter applies exactly as it does
there (the index answers "which of these new ids match"). Item fields are read fresh for every
event: the subscription's context forgets its reads before each one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from graph.access.permissions import requires
from graph.access.tokens import Role
from graph.api.context import Info
from graph.api.types.execution import Execution
from graph.api.types.export import ExportJob
from graph.api.types.inputs import ExecutionFilter, run_filter
from graph.errors import SlowConsumer
from graph.services.broadcast import EventKind, SlowConsumerError
from storage.query import RunFilter


async def _events(
    info: Info, kind: EventKind, flt: RunFilter | None
) -> AsyncGenerator[Execution, None]:
    state = info.context.state
    try:
        async for ids in state.broadcaster.subscribe(kind):
            runs = state.catalog.matching_runs(ids, flt)
            info.context.forget_reads()
            for run in runs:
                yield Execution.from_summary(run)
    except SlowConsumerError as exc:
        raise SlowConsumer(str(exc)) from None


_FILTER = strawberry.argument(description="Only runs matching this filter (as in executions).")


@strawberry.type(description="Live updates while the store changes.")
class Subscription:
    @strawberry.subscription(
        description="Each run once, when its file first becomes a valid record (a file still "
        "being written is announced when the writer finishes).",
        extensions=requires(Role.READER),
    )
    async def execution_added(
        self,
        info: Info,
        filter: Annotated[ExecutionFilter | None, _FILTER] = None,
    ) -> AsyncGenerator[Execution, None]:
        async for execution in _events(info, "added", run_filter(filter)):
            yield execution

    @strawberry.subscription(
        description="A served run whose file was rewritten or grew (its new content).",
        extensions=requires(Role.READER),
    )
    async def execution_changed(
        self,
        info: Info,
        filter: Annotated[ExecutionFilter | None, _FILTER] = None,
    ) -> AsyncGenerator[Execution, None]:
        async for execution in _events(info, "changed", run_filter(filter)):
            yield execution

    @strawberry.subscription(
        description="An export job now and after each change of status or progress, until it "
        "is DONE or FAILED (role researcher).",
        extensions=requires(Role.RESEARCHER),
    )
    async def export_job_progress(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The id exportExecutions returned.")
        ],
    ) -> AsyncGenerator[ExportJob, None]:
        async for job in info.context.state.exports.watch(str(id)):
            yield ExportJob.from_state(job)
