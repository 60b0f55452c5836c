"""Storage statistics: totals, invalid files, and counts for the UI's filter sidebar.

Each field is computed only when asked and cached until the index changes: the sidebar asks for
a few counts on every page view, a researcher may ask for all of them once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry

from graph.access.permissions import requires
from graph.access.tokens import Role
from storage.query import StatsSource


@strawberry.type(description="How many runs (or items) share one value.")
class ValueCount:
    value: str = strawberry.field(description="The value (a config name, a day YYYY-MM-DD, ...).")
    count: int = strawberry.field(description="How many runs or items have it.")


@strawberry.type(description="A file in the store that is not served, and why.")
class InvalidRecord:
    file_name: str = strawberry.field(description="Name of the file within the store.")
    reason: str = strawberry.field(description="Why it cannot be served.")


def _counts(rows: list[tuple[str, int]]) -> list[ValueCount]:
    return [ValueCount(value=value, count=count) for value, count in rows]


@strawberry.type(description="Figures about the store (or the runs matching a filter).")
class StorageStats:
    source: strawberry.Private[StatsSource]
    cached: strawberry.Private[Callable[[str, Callable[[], Any]], Any]]

    def _get(self, name: str, compute: Callable[[], Any]) -> Any:
        return self.cached(name, compute)

    @strawberry.field(description="Number of valid, served runs.")
    def total_records(self) -> int:
        return int(self._get("totals", self.source.totals)[0])

    @strawberry.field(description="Bytes on disk of the served runs' files.")
    def total_size_bytes(self) -> int:
        return int(self._get("totals", self.source.totals)[1])

    @strawberry.field(description="Number of files in the store that are not served.")
    def invalid_record_count(self) -> int:
        return len(self._get("invalid", self.source.invalid))

    @strawberry.field(
        description="Files that are not served (empty, truncated, malformed, duplicate, ...). "
        "Role admin; for other roles null, with a FORBIDDEN error.",
        extensions=requires(Role.ADMIN),
    )
    def invalid_records(self) -> list[InvalidRecord] | None:
        return [
            InvalidRecord(file_name=name, reason=reason)
            for name, reason in self._get("invalid", self.source.invalid)
        ]

    @strawberry.field(description="Start time of the oldest run.")
    def oldest_timestamp(self) -> datetime | None:
        value: datetime | None = self._get("oldest", self.source.oldest)
        return value

    @strawberry.field(description="Start time of the newest run.")
    def newest_timestamp(self) -> datetime | None:
        value: datetime | None = self._get("newest", self.source.newest)
        return value

    @strawberry.field(description="Runs per config, most frequent first.")
    def by_config(self) -> list[ValueCount]:
        return _counts(self._get("config", lambda: self.source.runs_by("config_name")))

    @strawberry.field(description="Runs per safety level, most frequent first.")
    def by_safety_level(self) -> list[ValueCount]:
        return _counts(self._get("safety", lambda: self.source.runs_by("safety_level")))

    @strawberry.field(description="Runs per execution mode, most frequent first.")
    def by_execution_mode(self) -> list[ValueCount]:
        return _counts(self._get("mode", lambda: self.source.runs_by("execution_mode")))

    @strawberry.field(description="Runs per user id, most frequent first.")
    def by_user(self) -> list[ValueCount]:
        return _counts(self._get("user", lambda: self.source.runs_by("user_id")))

    @strawberry.field(description="Runs per day (YYYY-MM-DD, local time), newest day first.")
    def by_day(self) -> list[ValueCount]:
        return _counts(self._get("day", self.source.runs_by_day))

    @strawberry.field(description="Items per item type (raw names on disk), most frequent first.")
    def by_item_type(self) -> list[ValueCount]:
        return _counts(self._get("item_type", lambda: self.source.items_by("item_type")))

    @strawberry.field(description="Items per model used, most frequent first.")
    def by_model(self) -> list[ValueCount]:
        return _counts(self._get("model", lambda: self.source.items_by("model_used")))
