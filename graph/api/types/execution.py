"""A run (``Execution``) and its events (``ExecutionItem``).

Summary fields of a run are plain attributes copied from the catalog's summary of it: listing
runs reads no record file. ``items`` is the one field that needs the file; it goes through the
request context, which reads each file at most once per request.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Annotated

import strawberry

from graph.api.context import Info
from graph.api.types.enums import ItemType, MediaType, item_type_of, media_type_of
from graph.api.types.inputs import ItemFilter, item_criteria
from graph.api.types.node import Node, item_local_id, to_global_id
from graph.api.types.scalars import JSON, BigInt
from graph.errors import NotFound
from storage.catalog import RecordKey, RecordUnavailable
from storage.models import ExecutionRecord
from storage.query import ItemPositions, RunRow

#: Items built between two turns given back to the event loop.
BUILD_CHUNK = 1000


@strawberry.type(description="One pipeline run: its record and, on request, its items.")
class Execution(Node):
    execution_id: str = strawberry.field(
        description="Id of the run, as in its file name (exec_YYYYMMDD_HHMMSS_xxxxxxxx)."
    )
    config_name: str = strawberry.field(
        description="Stage-2 config: dada, stillepost, bauhaus, image_comparison, ..."
    )
    timestamp: datetime = strawberry.field(
        description="Start time as stored: naive local time stays naive (no offset)."
    )
    user_id: str = strawberry.field(description="Opaque pseudonymous id of a pupil.")
    session_id: str = strawberry.field(description="Opaque session id.")
    execution_mode: str | None = strawberry.field(
        description="eco or fast (deprecated upstream, still present)."
    )
    safety_level: str | None = strawberry.field(
        description="kids, youth, adult, research (older files: teens, adults, off)."
    )
    used_seed: BigInt | None = strawberry.field(description="Generation seed; may exceed 32 bits.")
    total_execution_time: float | None = strawberry.field(
        description="Duration of the whole run in seconds."
    )
    taxonomy_version: str | None = strawberry.field(
        description='Item taxonomy version; always "1.0" upstream, do not rely on it.'
    )
    item_count: int = strawberry.field(description="Number of items in the run.")
    size_bytes: int = strawberry.field(description="Size of the run's record file in bytes.")
    file_name: strawberry.Private[str]
    rid: strawberry.Private[int]

    def global_id(self) -> strawberry.ID:
        return to_global_id("Execution", self.execution_id)

    @classmethod
    def from_summary(cls, run: RunRow) -> Execution:
        """Copy what the type needs from the catalog's summary of a run; reads nothing."""
        return cls(
            execution_id=run.execution_id,
            config_name=run.config_name,
            timestamp=run.timestamp,
            user_id=run.user_id,
            session_id=run.session_id,
            execution_mode=run.execution_mode,
            safety_level=run.safety_level,
            used_seed=None if run.used_seed is None else BigInt(run.used_seed),
            total_execution_time=run.total_execution_time,
            taxonomy_version=run.taxonomy_version,
            item_count=run.item_count,
            size_bytes=run.size,
            file_name=run.file_name,
            rid=run.rid,
        )

    @property
    def record_key(self) -> RecordKey:
        """What the request context reads this run's record by."""
        return (self.execution_id, self.file_name)

    async def record(self, info: Info) -> ExecutionRecord:
        """The whole record, read at most once per request."""
        return await info.context.record(self.record_key)

    @strawberry.field(
        description="The run's items in chronological order, optionally filtered. They count "
        "against the request's item budget with the run's real item count (with a filter: the "
        "matching items) and file size, before the file is read: a request over either limit "
        "(EXECGRAPH_MAX_ITEMS_PER_REQUEST, EXECGRAPH_MAX_ITEM_BYTES_PER_REQUEST) is refused "
        "as a whole with QUERY_TOO_COMPLEX."
    )
    async def items(
        self,
        info: Info,
        filter: Annotated[
            ItemFilter | None, strawberry.argument(description="Only items matching this filter.")
        ] = None,
    ) -> list[ExecutionItem]:
        # The request's item budget is charged from the index's facts (the run's item count,
        # or its matching positions, and its file size) before the file is read: over it,
        # nothing is read or built for this run (see graph.api.extensions.limits).
        # With a filter, the index's positions apply only to the file version they were
        # computed from: the catalog checks the signature of what was read against it, and
        # matches the record's own items otherwise (Catalog.matching_items).
        budget = info.context.item_budget
        crit = item_criteria(filter)
        found: ItemPositions | None = None
        if crit is not None:
            found = await info.context.positions.load((self.rid, crit))
        charged = self.item_count if found is None else len(found.positions)
        budget.charge(charged, self.size_bytes)
        record, signature = await info.context.signed_record(self.record_key)
        count = len(record.items)
        positions: list[int] | None = None
        if crit is not None and found is not None:
            match = partial(
                info.context.state.catalog.matching_items,
                record,
                signature,
                self.file_name,
                found,
                crit,
            )
            try:
                # A mismatch matches in Python or has the index catch up: off the event loop.
                same = signature is not None and found.signature == signature
                positions = match() if same else await asyncio.to_thread(match)
            except RecordUnavailable as exc:
                raise NotFound(f"{exc}", executionId=self.execution_id) from None
        wanted = count if positions is None else len(positions)
        if wanted > charged:  # the file grew or changed since the index saw it
            budget.charge(wanted - charged, 0)
        built: list[ExecutionItem] = []
        for pos in range(count) if positions is None else positions:
            if pos < count:
                built.append(ExecutionItem.build(self, record, pos))
                if len(built) % BUILD_CHUNK == 0:
                    await asyncio.sleep(0)  # let other requests in (and a deadline's cancel)
        return built


@strawberry.type(
    description="One event of a run: an input, a translation, a safety decision, "
    "an interception iteration, an output, an error, ..."
)
class ExecutionItem(Node):
    sequence_number: int = strawberry.field(description="1-based position within the run.")
    timestamp: datetime = strawberry.field(description="When the event happened, as stored.")
    stage: int = strawberry.field(
        description="0 start, 1 translation+safety, 2 interception, 3 pre-output safety, "
        "4 output, 5 complete; pipeline errors carry the stage they failed in."
    )
    stage_iteration: int | None = strawberry.field(
        description="Stage 2 only: 1..N for recursive configs (Stille Post: 8)."
    )
    loop_iteration: int | None = strawberry.field(
        description="Stages 3-4: 1-based index of the output pass; a safety check and the "
        "output of one pass share it."
    )
    media_type: MediaType = strawberry.field(description="Media of the item.")
    raw_media_type: str = strawberry.field(description="The media type exactly as on disk.")
    item_type: ItemType = strawberry.field(
        description="Kind of event; UNKNOWN for types this version does not know."
    )
    raw_item_type: str = strawberry.field(description="The item type exactly as on disk.")
    content: str | None = strawberry.field(
        description="Prompt, translation, interception text, block reason or error message."
    )
    file_path: str | None = strawberry.field(
        description="Output reference, NOT reliably a path: a ComfyUI job id, a URL or a "
        "server path."
    )
    config_used: str | None = strawberry.field(description="Config used, e.g. sd35_large.")
    model_used: str | None = strawberry.field(
        description="Model, e.g. gpt-oss; null for fast-path checks, 'unknown' for ComfyUI."
    )
    backend_type: str | None = strawberry.field(
        description="ollama, comfyui or openrouter (older files call it backend_used)."
    )
    execution_time: float | None = strawberry.field(description="Duration in seconds.")
    metadata: JSON = strawberry.field(
        description="Free-form metadata; keys vary by item type and over time."
    )
    execution: Execution = strawberry.field(description="The run this item belongs to.")
    pos: strawberry.Private[int]

    def global_id(self) -> strawberry.ID:
        return to_global_id("ExecutionItem", item_local_id(self.execution.execution_id, self.pos))

    @classmethod
    def build(cls, execution: Execution, record: ExecutionRecord, pos: int) -> ExecutionItem:
        """Wrap item ``pos`` of ``record``."""
        item = record.items[pos]
        return cls(
            pos=pos,
            sequence_number=item.sequence_number,
            timestamp=item.timestamp,
            stage=item.stage,
            stage_iteration=item.stage_iteration,
            loop_iteration=item.loop_iteration,
            media_type=media_type_of(item.media_type),
            raw_media_type=item.media_type,
            item_type=item_type_of(item.item_type),
            raw_item_type=item.item_type,
            content=item.content,
            file_path=item.file_path,
            config_used=item.config_used,
            model_used=item.model_used,
            backend_type=item.backend_type,
            execution_time=item.execution_time,
            metadata=JSON(item.metadata),
            execution=execution,
        )
