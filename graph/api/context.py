"""Per-app state and the per-request context with what it has read.

Reads live in the request context, never longer: within one request each record file is read at
most once however many fields ask for it, and nothing read in one request leaks into the next (a
file may have changed in between). Everything the API reads goes through the app's
:class:`~storage.catalog.Catalog`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from graph.api.extensions.limits import ItemBudget, current_deadline
from graph.errors import NotFound, Timeout
from graph.services.broadcast import Broadcaster
from graph.services.cache import VersionedCache
from graph.services.export_jobs import ExportJobs
from graph.settings import Settings
from storage.catalog import Catalog, RecordKey, RecordUnavailable
from storage.index import RecordIndex
from storage.models import ExecutionRecord
from storage.query import ItemCriteria, ItemPositions
from storage.reader import FileSignature


@dataclass
class AppState:
    """What lives as long as the app: settings, the index and its catalog, caches and counters.

    The API reads only through ``catalog``; ``index`` is there for the writes (``syncIndex``).
    """

    settings: Settings
    index: RecordIndex
    catalog: Catalog
    exports: ExportJobs
    cache: VersionedCache = field(default_factory=VersionedCache)
    broadcaster: Broadcaster = field(default_factory=Broadcaster)
    request_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def files_read(self) -> int:
        """Record files read to answer requests (tests and the benchmark assert on it)."""
        return self.catalog.files_read


Read = ExecutionRecord | RecordUnavailable
"""What reading a run's file gave: its record, or why it no longer is that run."""

SignedRead = tuple[Read, FileSignature | None]
"""A read and the signature of the file version it read (None when unavailable)."""

PositionsKey = tuple[int, ItemCriteria]
"""(run rid, item criteria): which item positions of a run match."""


class Context:
    """The context of one GraphQL request.

    Its record reads, its loader and the cache's version check are made on first use: a
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
        self.state.cache.observe(self.state.catalog.data_version())
        return self.state.cache

    @cached_property
    def item_budget(self) -> ItemBudget:
        """What this request (or subscription event) may still build: items and file bytes,
        charged from the index's facts before files are read (see
        :mod:`graph.api.extensions.limits`)."""
        return ItemBudget.of(self.state.settings)

    @cached_property
    def _reads(self) -> dict[RecordKey, asyncio.Future[SignedRead]]:
        return {}

    @cached_property
    def _batch(self) -> list[tuple[RecordKey, asyncio.Future[SignedRead]]]:
        return []

    async def record(self, key: RecordKey) -> ExecutionRecord:
        """A run's record by (execution id, file name), its file read at most once per request;
        raises :class:`NotFound` if the file no longer holds that run."""
        return _checked((await self._read(key))[0])

    async def signed_record(self, key: RecordKey) -> tuple[ExecutionRecord, FileSignature | None]:
        """:meth:`record` with the signature of the file version it was read from (the same
        read: one per file and request), to compare with the index's (item positions)."""
        found, signature = await self._read(key)
        return _checked(found), signature

    async def records(self, keys: Sequence[RecordKey]) -> list[ExecutionRecord]:
        """:meth:`record` for several runs, read together."""
        reads = [self._read(key) for key in keys]
        return [_checked((await read)[0]) for read in reads]

    def _read(self, key: RecordKey) -> asyncio.Future[SignedRead]:
        """The read of one file, joining the batch that goes to a worker thread next.

        The files asked for in one turn of the event loop (a page of runs whose items are all
        asked for) are read in one worker-thread call: the event loop never waits for the disk
        or the parser, and 50 files cost one thread hop, not 50.
        """
        read = self._reads.get(key)
        if read is None:
            loop = asyncio.get_running_loop()
            read = self._reads[key] = loop.create_future()
            batch = self._batch
            if not batch:
                loop.call_soon(_dispatch, loop, self.state.catalog, batch, self.item_budget)
            batch.append((key, read))
        return read

    @cached_property
    def positions(self) -> DataLoader[PositionsKey, ItemPositions]:
        """Positions of a run's items matching some criteria, in one query per criteria, with
        the file signature they belong to (see :meth:`Catalog.matching_items`)."""
        return DataLoader(load_fn=partial(_load_positions, self.state.catalog))

    def forget_reads(self) -> None:
        """Start afresh, as a new request would (a subscription does so before each event)."""
        for name in ("cache", "item_budget", "_reads", "_batch", "positions"):
            self.__dict__.pop(name, None)


# The functions below take what they need, not the context: a callback or loader held by the
# context and calling back into it would be a reference cycle, and the whole request (its
# records, items and futures) would wait for the garbage collector instead of being freed when
# the request ends.


def _dispatch(
    loop: asyncio.AbstractEventLoop,
    catalog: Catalog,
    batch: list[tuple[RecordKey, asyncio.Future[SignedRead]]],
    budget: ItemBudget,
) -> None:
    """Hand the batch's files to a worker thread; settle each read when it is back.

    Runs in the requesting task's context (``call_soon`` copies it): the worker is given the
    request's deadline, which it cannot see itself.
    """
    taken = batch[:]
    batch.clear()
    keys = [key for key, _ in taken]
    # Past the deadline the request is being cancelled, and over its item budget it is
    # refused: reading on would only hold memory and a thread, so the worker stops between
    # files.
    stop = partial(_stopped, current_deadline(), budget)
    signatures: list[FileSignature | None] = []
    done = loop.run_in_executor(
        None, partial(catalog.read_runs, keys, stop=stop, signatures=signatures)
    )
    done.add_done_callback(partial(_settle, [read for _, read in taken], budget, signatures))


def _stopped(deadline: float | None, budget: ItemBudget) -> bool:
    return budget.exceeded or (deadline is not None and time.monotonic() > deadline)


def _settle(
    reads: list[asyncio.Future[SignedRead]],
    budget: ItemBudget,
    signatures: list[FileSignature | None],
    done: asyncio.Future[list[Read]],
) -> None:
    error = asyncio.CancelledError() if done.cancelled() else done.exception()
    found = [] if error is not None else done.result()
    for position, read in enumerate(reads):
        if read.done():  # its request was cancelled (timed out)
            continue
        if error is not None:
            read.set_exception(error)
        elif position < len(found):
            read.set_result((found[position], signatures[position]))
        elif budget.exceeded:
            read.set_exception(budget.refusal())
        else:  # the worker stopped at the deadline
            read.set_exception(Timeout("the request's time ran out before this file was read"))


def _checked(found: Read) -> ExecutionRecord:
    if isinstance(found, RecordUnavailable):
        raise NotFound(f"{found}; try again shortly", executionId=found.execution_id)
    return found


async def _load_positions(catalog: Catalog, keys: Sequence[PositionsKey]) -> list[ItemPositions]:
    by_criteria: dict[ItemCriteria, list[int]] = {}
    for rid, crit in keys:
        by_criteria.setdefault(crit, []).append(rid)
    found = {crit: catalog.item_positions(rids, crit) for crit, rids in by_criteria.items()}
    return [found[crit][rid] for rid, crit in keys]


Info = StrawberryInfo[Context, None]
