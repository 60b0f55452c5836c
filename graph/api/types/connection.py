"""Relay connections of runs and items, with a lazily counted ``totalCount``."""

from __future__ import annotations

from collections.abc import Callable

import strawberry

from graph.api.types.execution import Execution, ExecutionItem


@strawberry.type(description="Where a page sits in the whole list (Relay PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More rows follow this page.")
    has_previous_page: bool = strawberry.field(description="Rows precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first row, if any.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last row, if any.")


@strawberry.type(description="A run in a page, with its cursor.")
class ExecutionEdge:
    cursor: str = strawberry.field(description="Opaque position; pass it as after or before.")
    node: Execution = strawberry.field(description="The run.")


@strawberry.type(description="A page of runs.")
class ExecutionConnection:
    edges: list[ExecutionEdge] = strawberry.field(description="The runs of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more exist.")
    count: strawberry.Private[Callable[[], int]]

    @strawberry.field(description="Number of runs matching the filter, across all pages.")
    def total_count(self) -> int:
        return self.count()

    @strawberry.field(description="The runs of this page without their cursors (shortcut).")
    def nodes(self) -> list[Execution]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="An item in a page, with its cursor.")
class ItemEdge:
    cursor: str = strawberry.field(description="Opaque position; pass it as after or before.")
    node: ExecutionItem = strawberry.field(description="The item.")


@strawberry.type(description="A page of items across runs: newest run first, then in run order.")
class ItemConnection:
    edges: list[ItemEdge] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more exist.")
    count: strawberry.Private[Callable[[], int]]

    @strawberry.field(description="Number of items matching the filters, across all pages.")
    def total_count(self) -> int:
        return self.count()

    @strawberry.field(description="The items of this page without their cursors (shortcut).")
    def nodes(self) -> list[ExecutionItem]:
        return [edge.node for edge in self.edges]
