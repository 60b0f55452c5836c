"""Per-app state and the per-request context with what it has read.

Reads live in the request context, never longer: within one request each record file is read at
most once however many fields ask for it, and nothing read in one request leaks into the next (a
file may have changed in between).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from graph.api.errors import NotFound
from graph.services.broadcast import Broadcaster
from graph.services.cache import VersionedCache
from graph.services.export_jobs import ExportJobs
from graph.settings import Settings
from storage.index import RecordIndex
from storage.models import ExecutionRecord
from storage.query import ItemCriteria, item_positions
from storage.reader import InvalidRecordError, read_record


@dataclass
class AppState:
    """What lives as long as the app: settings, the index, caches and counters."""

    settings: Settings
    index: RecordIndex
    exports: ExportJobs
    cache: VersionedCache = field(default_factory=VersionedCache)
    broadcaster: Broadcaster = field(default_factory=Broadcaster)
    #: Record files read to answer requests (tests and the benchmark assert on it).
    files_read: int = 0
    request_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def read_record(self, file_name: str, execution_id: str) -> ExecutionRecord | NotFound:
        """Read a served record's file again; a typed error if it no longer holds that record."""
        self.files_read += 1
        try:
            record = read_record(
                self.index.store, file_name, max_bytes=self.settings.max_file_bytes
            )
        except InvalidRecordError as exc:
            # The index is behind the disk (file deleted or being rewritten): catch up now.
            self.index.sync_names([file_name], wait=False)
            return NotFound(
                f"run {execution_id} cannot be read right now ({exc.reason}); try again shortly",
                executionId=execution_id,
            )
        if record.execution_id != execution_id:
            return NotFound(f"run {execution_id} was replaced on disk; query it again")
        return record


RecordKey = tuple[str, str]
"""(execution_id, file_name) of a run found in the index."""

PositionsKey = tuple[int, ItemCriteria]
"""(run rid, item criteria): which item positions of a run match."""


class Context:
    """The context of one GraphQL request.

    Its record cache, its loader and the cache's version check are made on first use: a
    request that reads no record and counts nothing (``{ __typename }``, a page of summaries
    with a cached count) pays for none of them.
    """

    def __init__(self, state: AppState, request: Any = None, response: Any = None) -> None:
        self.state = state
        self.request = request
        self.response = response
        self.request_id = next(state.request_ids)

    @cached_property
    def cache(self) -> VersionedCache:
        """The app's answer cache, emptied first if the index changed since it was filled."""
        self.state.cache.observe(self.state.index.data_version())
        return self.state.cache

    @cached_property
    def _records(self) -> dict[RecordKey, ExecutionRecord | NotFound]:
        return {}

    def record(self, key: RecordKey) -> ExecutionRecord:
        """A run's record by (execution id, file name), its file read at most once per request;
        raises :class:`NotFound` if the file no longer holds that run.

        Read at once rather than through a DataLoader: files are read one by one anyway, and a
        loader's batch costs the request two more turns of the event loop (about 0.15 ms of the
        2 ms answer for one run with all its items, measured in one process).
        """
        found = self._records.get(key)
        if found is None:
            execution_id, file_name = key
            found = self._records[key] = self.state.read_record(file_name, execution_id)
        if isinstance(found, NotFound):
            raise found
        return found

    @cached_property
    def positions(self) -> DataLoader[PositionsKey, list[int]]:
        """Positions of a run's items matching some criteria, in one query per criteria."""
        return DataLoader(load_fn=partial(_load_positions, self.state))

    def forget_reads(self) -> None:
        """Start afresh, as a new request would (a subscription does so before each event)."""
        for name in ("cache", "_records", "positions"):
            self.__dict__.pop(name, None)


# The loader's function takes the app's state, not the context: a loader held by the context
# and calling back into it would be a reference cycle, and the whole request (its records,
# items and futures) would wait for the garbage collector instead of being freed when the
# request ends.


async def _load_positions(state: AppState, keys: Sequence[PositionsKey]) -> list[list[int]]:
    by_criteria: dict[ItemCriteria, list[int]] = {}
    for rid, crit in keys:
        by_criteria.setdefault(crit, []).append(rid)
    conn = state.index.reader()
    found = {crit: item_positions(conn, rids, crit) for crit, rids in by_criteria.items()}
    return [found[crit][rid] for rid, crit in keys]


Info = StrawberryInfo[Context, None]
