"""The Mutation root: exports (role researcher) and index maintenance (role admin)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from graph.access.permissions import requires
from graph.access.tokens import Role
from graph.api.context import Info
from graph.api.types.enums import ExecutionOrder
from graph.api.types.export import ExportInput, ExportJob
from graph.api.types.inputs import item_criteria, run_filter
from graph.errors import StoreUnavailable
from storage.index import StoreNotFoundError


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


@strawberry.type(description="What a full index sync found and changed.")
class SyncResult:
    scanned: int = strawberry.field(description="Record files listed in the store.")
    added: int = strawberry.field(description="Runs newly served.")
    updated: int = strawberry.field(description="Served runs whose file changed.")
    removed: int = strawberry.field(description="Runs no longer served (file gone or broken).")
    invalid: int = strawberry.field(description="Files read in this sync that cannot be served.")


@strawberry.type(
    description="Changes: exports and index maintenance (the store itself is read only)."
)
class Mutation:
    @strawberry.mutation(
        description="Export runs as a file (role researcher). Small exports finish within this "
        "call (status DONE, file ready); large ones return at once: follow exportJob(id) or the "
        "exportJobProgress subscription.",
        extensions=requires(Role.RESEARCHER),
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
            execution_ids=input.checked_execution_ids(),
            flt=flt,
            order=(input.order_by or ExecutionOrder.TIMESTAMP_DESC).run_order,
            item_criteria=item_criteria(input.item_filter),
            pseudonymize=bool(input.pseudonymize),
            selection=selection,
        )
        return ExportJob.from_state(await jobs.start(plan))

    @strawberry.mutation(
        description="Re-scan the whole store now and bring the index in line with it (role "
        "admin). The watcher normally does this within a second; use it after restoring files "
        "or on mounts without change notifications. Subscribers hear of what changed.",
        extensions=requires(Role.ADMIN),
    )
    async def sync_index(self, info: Info) -> SyncResult:
        try:
            report = await asyncio.to_thread(info.context.state.index.sync)
        except StoreNotFoundError as exc:
            raise StoreUnavailable(
                f"{exc}; the index is served as it was until the store is back"
            ) from exc
        return SyncResult(
            scanned=report.scanned,
            added=report.added,
            updated=report.updated,
            removed=report.removed,
            invalid=report.invalid,
        )
