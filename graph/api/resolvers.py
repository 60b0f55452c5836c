"""Resolvers of the Query root: argument checks, then one index query, then thin wrapping.

Runs come from the index; a record file is read (through the request context, each file at
most once per request) only when item fields are asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from graph.api.context import Info
from graph.api.cursor import (
    decode_item_cursor,
    decode_run_cursor,
    encode_item_cursor,
    encode_run_cursor,
)
from graph.api.paging import PageSizes
from graph.api.types.connection import (
    ExecutionConnection,
    ExecutionEdge,
    ItemConnection,
    ItemEdge,
    PageInfo,
)
from graph.api.types.enums import ExecutionOrder
from graph.api.types.execution import Execution, ExecutionItem
from graph.api.types.inputs import ExecutionFilter, ItemFilter, item_criteria, run_filter
from graph.api.types.node import Node, from_global_id, parse_item_local_id
from graph.api.types.stats import StorageStats
from graph.errors import BadUserInput
from storage.models import MAX_EXECUTION_ID_LENGTH
from storage.query import Page, PageRequest, RunFilter

K = TypeVar("K")


def page_request(
    info: Info,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    decode: Callable[[str, str], K],
) -> PageRequest[K]:
    """Check Relay arguments and decode their cursors."""
    pages = PageSizes.of(info.context.state.settings)
    first, last = pages.requested(first, last, before_only=before is not None and after is None)
    return PageRequest(
        first=first,
        after=None if after is None else decode(after, "after"),
        last=last,
        before=None if before is None else decode(before, "before"),
    )


def page_info(page: Page[Any], cursors: list[str]) -> PageInfo:
    """The Relay PageInfo of a page whose edges carry ``cursors``."""
    return PageInfo(
        has_next_page=page.next_exists(),
        has_previous_page=page.previous_exists(),
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def _cached_count(
    info: Info, key: tuple[Any, ...], compute: Callable[[], int]
) -> Callable[[], int]:
    cache = info.context.cache
    return lambda: cache.get(key, compute)


def resolve_executions(
    info: Info,
    filter: ExecutionFilter | None,
    order_by: ExecutionOrder,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> ExecutionConnection:
    order = order_by.run_order
    flt = run_filter(filter)
    request = page_request(
        info, first, after, last, before, lambda c, a: decode_run_cursor(c, order_by, a)
    )
    catalog = info.context.state.catalog
    page = catalog.list_runs(flt, order, request)
    edges = []
    for run in page.rows:
        value, eid = run.sort_key(order)
        edges.append(
            ExecutionEdge(
                cursor=encode_run_cursor(order_by, value, eid), node=Execution.from_summary(run)
            )
        )
    return ExecutionConnection(
        edges=edges,
        page_info=page_info(page, [edge.cursor for edge in edges]),
        count=_cached_count(info, ("runs", flt), lambda: catalog.count_runs(flt)),
    )


async def resolve_items(
    info: Info,
    filter: ItemFilter | None,
    execution_filter: ExecutionFilter | None,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> ItemConnection:
    crit = item_criteria(filter)
    flt = run_filter(execution_filter)
    request = page_request(info, first, after, last, before, decode_item_cursor)
    catalog = info.context.state.catalog
    page = catalog.list_items(crit, flt, request)
    runs: dict[str, Execution] = {}
    for ref in page.rows:
        if ref.run.execution_id not in runs:
            runs[ref.run.execution_id] = Execution.from_summary(ref.run)
    # The page's items and the files they come from, charged before any file is read.
    info.context.item_budget.charge(
        len(page.rows), sum(execution.size_bytes for execution in runs.values())
    )
    # Each file read once for the whole page, all in one worker-thread call.
    read = await info.context.records([execution.record_key for execution in runs.values()])
    records = dict(zip(runs, read, strict=True))
    edges = [
        ItemEdge(
            cursor=encode_item_cursor(*ref.key),
            node=ExecutionItem.build(
                runs[ref.run.execution_id], records[ref.run.execution_id], ref.pos
            ),
        )
        for ref in page.rows
        if ref.pos < len(records[ref.run.execution_id].items)
    ]
    return ItemConnection(
        edges=edges,
        page_info=page_info(page, [edge.cursor for edge in edges]),
        count=_cached_count(info, ("items", crit, flt), lambda: catalog.count_items(crit, flt)),
    )


def resolve_execution(info: Info, execution_id: str) -> Execution | None:
    if len(execution_id) > MAX_EXECUTION_ID_LENGTH:
        return None
    run = info.context.state.catalog.get_run(execution_id)
    return None if run is None else Execution.from_summary(run)


async def resolve_node(info: Info, global_id: str) -> Node | None:
    decoded = from_global_id(global_id)
    if decoded is None:
        raise BadUserInput("'id' is not an id issued by this API (use an object's id field)")
    kind, local_id = decoded
    if kind == "Execution":
        return resolve_execution(info, local_id)
    if kind == "ExecutionItem":
        parsed = parse_item_local_id(local_id)
        if parsed is None:
            return None
        execution_id, pos = parsed
        execution = resolve_execution(info, execution_id)
        if execution is None:
            return None
        info.context.item_budget.charge(1, execution.size_bytes)
        record = await execution.record(info)
        return ExecutionItem.build(execution, record, pos) if pos < len(record.items) else None
    return None


def resolve_storage_stats(info: Info, filter: ExecutionFilter | None) -> StorageStats:
    flt: RunFilter | None = run_filter(filter)
    source = info.context.state.catalog.stats(flt)

    cache = info.context.cache

    def cached(name: str, compute: Callable[[], Any]) -> Any:
        return cache.get(("stats", name, flt), compute)

    return StorageStats(source=source, cached=cached)
