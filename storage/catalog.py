"""The reader API over one store: everything the service reads from the index and the files.

:class:`Catalog` answers every read the GraphQL layer and the export jobs make: pages and counts
of runs and items, runs by id, statistics, and the record file of a served run together with the
check that the file still holds that run (:meth:`Catalog.read_run`). It never hands out a SQLite
connection: each call takes the calling thread's read connection from the index, so a call made
in a worker thread uses that thread's. Its results are value objects (:class:`RunRow`,
:class:`ItemRef`, :class:`Page`, :class:`~storage.models.ExecutionRecord`) that callers copy what
they need from.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence

from storage import query
from storage.index import RecordIndex
from storage.models import ExecutionRecord
from storage.query import (
    ItemCriteria,
    ItemPositions,
    ItemRef,
    Page,
    PageRequest,
    RunFilter,
    RunOrder,
    RunRow,
    StatsSource,
)
from storage.reader import FileSignature, InvalidRecordError, parse_record, read_file

__all__ = ["Catalog", "RecordKey", "RecordUnavailable"]

RecordKey = tuple[str, str]
"""(execution id, file name) of a run, as the index serves it."""


class RecordUnavailable(Exception):
    """A served run's file no longer holds that run: gone, unreadable now, or another run's.

    The index is behind the disk; :meth:`Catalog.read_run` has already asked it to catch up.
    ``reason`` is safe to show to clients.
    """

    def __init__(self, execution_id: str, reason: str) -> None:
        super().__init__(f"run {execution_id} cannot be read right now ({reason})")
        self.execution_id = execution_id
        self.reason = reason


class Catalog:
    """The runs, items, figures and record files of one indexed store (thread-safe)."""

    def __init__(self, index: RecordIndex, *, max_file_bytes: int) -> None:
        self._index = index
        self._max_file_bytes = max_file_bytes
        self._files_read = 0
        self._count_lock = threading.Lock()

    @property
    def files_read(self) -> int:
        """Record files read so far (tests and the benchmark assert on it)."""
        return self._files_read

    def abort_statements_when(self, check: Callable[[], bool], *, every: int) -> None:
        """Abort any statement of a read connection (open now or later) once ``check()`` is
        true; it is asked every ``every`` SQLite virtual-machine steps."""

        def install(conn: sqlite3.Connection) -> None:
            conn.set_progress_handler(check, every)

        self._index.set_reader_hook(install)

    def data_version(self) -> int:
        """A number that changes whenever the index content changes (for caches)."""
        return self._index.data_version()

    # -- runs ------------------------------------------------------------------------------

    def list_runs(
        self,
        flt: RunFilter | None,
        order: RunOrder,
        page: PageRequest[tuple[str | float, str]],
    ) -> Page[RunRow]:
        """One keyset page of runs."""
        return query.list_runs(self._index.reader(), flt, order, page)

    def count_runs(self, flt: RunFilter | None) -> int:
        """How many runs match ``flt``."""
        return query.count_runs(self._index.reader(), flt)

    def get_runs(self, execution_ids: Sequence[str]) -> dict[str, RunRow]:
        """Summaries of the given runs (absent ids are left out)."""
        return query.get_runs(self._index.reader(), execution_ids)

    def get_run(self, execution_id: str) -> RunRow | None:
        """The summary of one run, or None when the index serves no such run."""
        return query.get_runs(self._index.reader(), [execution_id]).get(execution_id)

    def matching_runs(self, execution_ids: Sequence[str], flt: RunFilter | None) -> list[RunRow]:
        """The runs among ``execution_ids`` that match ``flt``, in the order of the ids."""
        return query.matching_runs(self._index.reader(), execution_ids, flt)

    def run_files(self, flt: RunFilter | None, order: RunOrder) -> list[tuple[str, str, int]]:
        """(execution id, file name, rid) of every matching run, in order (for exports)."""
        return query.run_files(self._index.reader(), flt, order)

    # -- items -----------------------------------------------------------------------------

    def list_items(
        self,
        crit: ItemCriteria | None,
        flt: RunFilter | None,
        page: PageRequest[tuple[str, str, int]],
    ) -> Page[ItemRef]:
        """One keyset page of items across runs: newest run first, then position in the run."""
        return query.list_items(self._index.reader(), crit, flt, page)

    def count_items(self, crit: ItemCriteria | None, flt: RunFilter | None) -> int:
        """How many items match."""
        return query.count_items(self._index.reader(), crit, flt)

    def item_positions(self, rids: Sequence[int], crit: ItemCriteria) -> dict[int, ItemPositions]:
        """For each run, the positions of its items matching ``crit`` (in file order), with the
        signature of the file version the index computed them from (see :meth:`matching_items`).
        """
        return query.item_positions(self._index.reader(), rids, crit)

    def matching_items(
        self,
        record: ExecutionRecord,
        signature: FileSignature | None,
        file_name: str,
        found: ItemPositions,
        crit: ItemCriteria,
    ) -> list[int]:
        """The positions in ``record`` (read from ``file_name`` with ``signature``) of its items
        matching ``crit``, given what the index found (:meth:`item_positions`).

        The index's positions are used only when they are positions in the very version of the
        file that was read: its signature then equals the one the index had when it computed
        them. Otherwise (the file was rewritten between the index's sync and the read, either
        way round) the criteria are applied to the record's own items here, exactly as the index
        applies them; only full-text criteria cannot be (FTS5's tokenizer decides what a word
        is), and then the index is asked to catch up with the file and
        :class:`RecordUnavailable` ("changed while read") is raised: asking again shortly gives
        a consistent answer.
        """
        count = len(record.items)
        if signature is not None and found.signature == signature:
            return [pos for pos in found.positions if pos < count]
        if crit.text is None:
            return [pos for pos, item in enumerate(record.items) if query.item_matches(crit, item)]
        self._index.sync_names([file_name], wait=False)
        raise RecordUnavailable(record.execution_id, "changed while read; try again")

    # -- figures ---------------------------------------------------------------------------

    def stats(self, flt: RunFilter | None = None) -> StatsSource:
        """Figures over the runs matching ``flt``, each computed when asked."""
        return StatsSource(self._index.reader, flt)

    # -- record files ----------------------------------------------------------------------

    def read_run(self, execution_id: str, file_name: str) -> ExecutionRecord:
        """The record of a served run, read from its file now.

        Raises :class:`RecordUnavailable` when the file cannot be read or holds another run;
        the index is then asked to catch up with that file (without waiting for a sync that is
        already running, here or in another process).
        """
        found = self.read_runs([(execution_id, file_name)])[0]
        if isinstance(found, RecordUnavailable):
            raise found
        return found

    def read_runs(
        self,
        keys: Sequence[RecordKey],
        *,
        stop: Callable[[], bool] | None = None,
        signatures: list[FileSignature | None] | None = None,
    ) -> list[ExecutionRecord | RecordUnavailable]:
        """:meth:`read_run` for several runs at once (one call for a worker thread to make).

        ``stop`` is asked before each file: once true, the rest are left unread (the list
        returned is then shorter than ``keys``). ``signatures``, when given, gets one entry per
        entry returned: the signature of the file version each record was read from (None for a
        :class:`RecordUnavailable`), for :meth:`matching_items`.
        """
        if signatures is None:
            signatures = []
        found: list[ExecutionRecord | RecordUnavailable] = []
        behind: list[str] = []
        for execution_id, file_name in keys:
            if stop is not None and stop():
                break
            try:
                data, signature = read_file(
                    self._index.store, file_name, max_bytes=self._max_file_bytes
                )
                record = parse_record(data)
            except InvalidRecordError as exc:
                found.append(RecordUnavailable(execution_id, exc.reason))
                signatures.append(None)
                behind.append(file_name)
                continue
            if record.execution_id != execution_id:
                found.append(RecordUnavailable(execution_id, "the file now holds another run"))
                signatures.append(None)
                behind.append(file_name)
                continue
            found.append(record)
            signatures.append(signature)
        with self._count_lock:
            self._files_read += len(found)
        if behind:
            self._index.sync_names(behind, wait=False)
        return found
