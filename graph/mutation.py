"""The Mutation root: exports."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from graph.context import Info
from graph.types.enums import ExecutionOrder
from graph.types.export import ExportInput, ExportJob
from graph.types.inputs import item_criteria, run_filter


def plain(value: Any) -> Any:
    """A JSON-ready copy of an input value (for the export's recorded selection)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, [])
        }
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def camel_keys(value: Any) -> Any:
    """Rename snake_case keys to the schema's camelCase, recursively."""
    if isinstance(value, dict):
        return {_camel(k): camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


@strawberry.type(description="Changes: exports (the store itself is read only).")
class Mutation:
    @strawberry.mutation(
        description="Export runs as a file. Small exports finish within this call (status "
        "DONE, file ready); large ones return at once: follow exportJob(id) or the "
        "exportJobProgress subscription."
    )
    async def export_executions(
        self,
        info: Info,
        input: Annotated[ExportInput, strawberry.argument(description="What to export, and how.")],
    ) -> ExportJob:
        jobs = info.context.state.exports
        flt = run_filter(input.filter)
        selection = camel_keys(
            {k: v for k, v in plain(input).items() if k not in ("format", "pseudonymize")}
        )
        plan = jobs.plan(
            format=input.format.name,
            execution_ids=input.execution_ids,
            flt=flt,
            order=(input.order_by or ExecutionOrder.TIMESTAMP_DESC).run_order,
            item_criteria=item_criteria(input.item_filter),
            pseudonymize=bool(input.pseudonymize),
            selection=selection,
        )
        return ExportJob.from_state(await jobs.start(plan))
