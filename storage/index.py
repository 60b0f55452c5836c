"""The index: an SQLite file kept outside the store, synced incrementally from it.

Why an index: the store is a flat directory of thousands of JSON files, and the UI lists, filters
and counts them on every page view. The index answers those from SQLite (keyset pages, no file I/O)
and is synced by comparing each file's signature (size, mtime, inode) with what it last saw, so a
restart on an indexed store only lists the directory.

Rules it keeps:

* the store is read-only: nothing is written into it, and only plain ``*.json`` names found by
  listing the store are ever opened (see :mod:`storage.reader`);
* a file that fails validation is kept in ``files`` with its reason and is not served; when it
  changes (a writer finishing it), it is read again;
* two files claiming one ``execution_id``: the file named ``<execution_id>.json`` wins, otherwise
  the one indexed first; the other is reported, and served if the winner disappears;
* an index of another format version, of another store, or that SQLite cannot read, is deleted
  and rebuilt;
* one writer per index file, across processes: every sync holds an OS file lock beside the index
  (``<index>.lock``), so several ``serve`` processes, or the workers of one, may share an index
  file (the others wait, and read meanwhile). A process that creates the index file holds the
  lock until its first sync is done, so nobody opens a file that is still being built or that
  the cold build is about to replace;
* every run a sync adds or changes is appended to the ``changes`` log in the transaction that
  stores it (not in a cold build: nobody can be listening to a file that did not exist), so that
  every process serving the index can tell its subscribers, whichever process synced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from filelock import FileLock, Timeout

from storage.extract import (
    Batch,
    Extracted,
    Gone,
    Outcome,
    Refused,
    extract,
    extract_batches,
)
from storage.files import replace_durably, sync_file
from storage.reader import (
    DEFAULT_MAX_FILE_BYTES,
    FileEntry,
    FileSignature,
    is_record_name,
    open_directory,
    stat_entry,
)
from storage.schema import (
    CHANGE_LOG_KEEP,
    DDL,
    FORMAT_VERSION,
    FTS_AUTOMERGE,
    INDEX_DDL,
    INSERT_ITEM,
    INSERT_RUN,
    ITEM_BITS,
    STATUS_DUPLICATE,
    STATUS_INVALID,
    STATUS_VALID,
    TABLE_DDL,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while files are read."""

#: Helper threads of SQLite's sorter while a cold build creates its indexes: the other cores.
_SORT_THREADS: Final = max(0, min((os.cpu_count() or 1) - 1, 3))
#: The page cache while those indexes are created, in KiB (negative: SQLite's convention); it
#: also sets the size of each sorted run handed to a helper thread.
_SORT_CACHE_KIB: Final = -4000

Change = tuple[int, str, str]
"""One row of the change log: (seq, kind ``added``/``changed``, execution id)."""

#: A sync of at least this many files into an empty index builds a new index file (see
#: :meth:`RecordIndex._build_anew`) instead of inserting into the open one.
BULK_THRESHOLD: Final = 3000


class StoreNotFoundError(Exception):
    """The configured store directory does not exist or is not a directory."""


@dataclass(slots=True)
class SyncReport:
    """What one sync changed."""

    scanned: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    invalid: int = 0
    added_ids: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything visible to queries changed."""
        return bool(self.added or self.updated or self.removed or self.invalid)


class RecordIndex:
    """The SQLite index of one store. Thread-safe: one writer at a time, readers per thread."""

    def __init__(
        self,
        store: Path,
        index_path: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        on_reader: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """``on_reader(conn)`` is called once for each new read connection (e.g. to install a
        progress handler), in the thread that will use it."""
        self.store = store
        self.on_reader = on_reader
        self.index_path = index_path
        self.max_file_bytes = max_file_bytes
        self._store_real = store.resolve()
        self._write_lock = threading.Lock()
        #: The writers' lock between processes; within this process ``_write_lock`` comes first
        #: (the file lock counts re-entries per object, not per thread).
        self._file_lock = FileLock(f"{index_path}.lock", thread_local=False)
        #: Whether this process holds ``_file_lock`` from creating the file until its first sync.
        self._creation_hold = False
        self._local = threading.local()
        self._writer: sqlite3.Connection | None = None
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._listeners: list[Callable[[SyncReport], None]] = []
        #: Whether this process created the index file and has not synced it yet: only then
        #: may the first sync build a new file in its place (no other process can have it open).
        self._created_here = False
        #: ``(st_dev, st_ino)`` of the file the writer opened (see :meth:`file_status`).
        self._file_id: tuple[int, int] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> RecordIndex:
        """Open (or create, or rebuild) the index file. Does not sync.

        A file that is not a database, or fails ``PRAGMA quick_check``, is deleted with one
        warning (with its ``-wal`` and ``-shm``) and a new one created; the next sync fills it
        from the store."""
        if not self.store.is_dir():
            raise StoreNotFoundError(f"store directory not found: {self.store}")
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        if self.index_path.resolve().is_relative_to(self._store_real):
            raise ValueError("the index must live outside the store directory")
        # Waits while another process creates or cold-builds this index file.
        self._file_lock.acquire()
        try:
            try:
                self._writer = self._connect_checked()
            except sqlite3.DatabaseError as exc:
                log.warning("index %s unusable (%s): rebuilding", self.index_path.name, exc)
                self._discard_file()
                self._writer = self._connect_checked()
            self._remember_file()
        except BaseException:
            self._file_lock.release()
            raise
        if self._created_here:
            self._creation_hold = True  # released by the first sync (or close)
        else:
            self._file_lock.release()
        return self

    def _remember_file(self) -> None:
        st = os.stat(self.index_path)
        self._file_id = (st.st_dev, st.st_ino)

    def file_status(self) -> str:
        """``"ok"`` while the index path still names the file this index opened; ``"missing"``
        when the path is gone or names another file (unlinked or replaced under a running
        server: its connections then serve a file nobody else sees); ``"closed"`` before
        :meth:`open`. One ``stat``, cheap enough for every health probe."""
        if self._file_id is None:
            return "closed"
        try:
            st = os.stat(self.index_path)
        except OSError:
            return "missing"
        return "ok" if (st.st_dev, st.st_ino) == self._file_id else "missing"

    def _end_creation_hold(self) -> None:
        if self._creation_hold:
            self._creation_hold = False
            self._file_lock.release()

    def close(self) -> None:
        """Close every connection this index opened."""
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()
        self._local = threading.local()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._file_id = None
        self._end_creation_hold()

    def __enter__(self) -> RecordIndex:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.index_path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-8000")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _connect_checked(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            meta = self._read_meta(conn)
            if meta is None:
                self._create(conn)
            elif meta.get("format_version") != FORMAT_VERSION or meta.get("store") != str(
                self._store_real
            ):
                log.info("index format or store changed: rebuilding %s", self.index_path.name)
                conn.close()
                self._discard_file()
                conn = self._connect()
                self._create(conn)
            else:
                _quick_check(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _read_meta(conn: sqlite3.Connection) -> dict[str, str] | None:
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise sqlite3.DatabaseError("not an execgraph index")
            return None
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def _create(self, conn: sqlite3.Connection, ddl: str = DDL) -> None:
        self._created_here = True
        with conn:
            conn.executescript(ddl)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format_version", FORMAT_VERSION), ("store", str(self._store_real))],
            )

    def _discard_file(self) -> None:
        _remove_database(str(self.index_path))
        _remove_database(self._building_path())

    def _building_path(self) -> str:
        return f"{self.index_path}.building"

    # -- reading ---------------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (queries only)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            if self.on_reader is not None:
                self.on_reader(conn)
            self._local.conn = conn
            with self._readers_lock:
                self._all_readers.append(conn)
        return conn

    def set_reader_hook(self, hook: Callable[[sqlite3.Connection], None]) -> None:
        """Call ``hook(conn)`` on every read connection: those open now and those to come."""
        with self._readers_lock:
            self.on_reader = hook
            for conn in self._all_readers:
                hook(conn)

    def data_version(self) -> int:
        """A number that changes whenever the index content changes (for caches)."""
        row = self.reader().execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def last_change(self) -> int:
        """The seq of the newest entry of the change log (0 when it is empty)."""
        row = self.reader().execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
        return int(row[0])

    def changes_after(self, seq: int, limit: int = 1000) -> list[Change]:
        """The change log's entries after ``seq``, oldest first, at most ``limit`` of them.

        Entries appear in seq order: seqs are handed out inside write transactions, and only
        one writer commits at a time.
        """
        rows = self.reader().execute(
            "SELECT seq, kind, execution_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [(int(n), str(kind), str(eid)) for n, kind, eid in rows]

    # -- syncing ---------------------------------------------------------------------------

    def sync(self, progress: ProgressCallback | None = None) -> SyncReport:
        """Bring the index in line with the whole store (new, changed, deleted files)."""
        with self._write_lock, self._file_lock:
            try:
                conn = self._require_writer()
                fresh, self._created_here = self._created_here, False
                empty = conn.execute("SELECT 1 FROM files LIMIT 1").fetchone() is None
                names = self._list_names()
                report = SyncReport(scanned=len(names))
                if (
                    fresh
                    and self._creation_hold
                    and empty
                    and len(names) >= BULK_THRESHOLD
                    and not self._all_readers
                ):
                    # Nothing to compare with: each file is stat'ed by whoever reads it, so that
                    # the listing's stats run in the workers, beside the reading.
                    self._build_anew(names, report, progress)
                else:
                    changed, removed, listing = self._compare(conn, names)
                    del names
                    self._apply(conn, changed, removed, listing, report, progress)
            finally:
                self._end_creation_hold()
        self._publish(report)
        return report

    def _compare(
        self, conn: sqlite3.Connection, names: list[str]
    ) -> tuple[list[str], list[str], dict[str, FileEntry]]:
        """Walk the store's sorted names and the index's files side by side, in name order.

        Returns the changed names (new or with another signature), the removed ones, and the
        directory entries of the changed ones. Only the names are held for the whole store (a
        sync of an unchanged 100,000-file store keeps no signature in memory), and SQLite's
        ``ORDER BY name`` (bytes of UTF-8) is the order of Python's sorted strings.
        """
        changed: list[str] = []
        removed: list[str] = []
        listing: dict[str, FileEntry] = {}
        cursor = conn.execute("SELECT name, size, mtime_ns, inode FROM files ORDER BY name")
        known = _fetched(cursor)
        row = next(known, None)
        stat = os.stat
        with open_directory(self.store) as dir_fd:
            for name in names:
                while row is not None and row[0] < name:
                    removed.append(row[0])
                    row = next(known, None)
                indexed = row is not None and row[0] == name
                if row is not None and indexed:
                    # The unchanged file (nearly every one): one stat, no objects built.
                    try:
                        if dir_fd is None:
                            st = stat(os.path.join(self.store, name))
                        else:
                            st = stat(name, dir_fd=dir_fd)
                    except OSError:
                        st = None
                    if st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == row[1:]:
                        row = next(known, None)
                        continue
                entry = stat_entry(self.store, name, dir_fd)
                if entry is None:  # gone since the listing
                    if indexed:
                        removed.append(name)
                elif row is None or not indexed or row[1:] != entry.signature:
                    changed.append(name)  # new, changed, or (unreadable) with a new signature
                    listing[name] = entry
                if indexed:
                    row = next(known, None)
        while row is not None:
            removed.append(row[0])
            row = next(known, None)
        return changed, removed, listing

    def _build_anew(
        self, names: list[str], report: SyncReport, progress: ProgressCallback | None
    ) -> None:
        """Index a whole store into a new file, then put it in place of the empty index.

        The cold build of a large store: the new file is written without a journal or fsyncs
        between batches (a crash leaves only a ``.building`` file, deleted on the next try),
        and the secondary indexes are created once the rows are in (one sort each instead of a
        B-tree update per row). The rows and decisions are exactly those of an incremental
        sync (:meth:`_apply`); only the file is written differently. Runs only on the first sync
        after this process created the index file, while it still holds the file lock it took to
        create it and has no reader connection open, so that nobody (no other process either:
        they wait for that lock to open the file) is left looking at the replaced file. Nothing
        goes into the change log: nobody can be subscribed to a file that did not exist.
        """
        building = self._building_path()
        _remove_database(building)
        conn = sqlite3.connect(building, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-32000")
            conn.execute("PRAGMA temp_store=MEMORY")
            self._create(conn, TABLE_DDL)
            # Full-text segments are left unmerged while the rows stream in (FTS5 still merges
            # a level once it holds `crisismerge` segments): less work for the writer, a
            # slightly larger file, the same query speed. Then back to the default.
            _set_automerge(conn, 0)
            self._apply(conn, names, [], None, report, progress, log_changes=False)
            _set_automerge(conn, FTS_AUTOMERGE)
            _create_indexes(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.close()
            sync_file(Path(building))  # on disk before it replaces the old one
        except BaseException:
            conn.close()
            _remove_database(building)
            raise
        self._require_writer().close()
        self._writer = None
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{self.index_path}{suffix}")
        replace_durably(Path(building), self.index_path)
        self._writer = self._connect_checked()
        self._remember_file()
        self._created_here = False

    def add_listener(self, listener: Callable[[SyncReport], None]) -> None:
        """Call ``listener(report)`` after every sync that changed what queries see.

        Listeners run in the syncing thread, after the index lock is released; they must be
        quick (hand the report to a queue) and must not raise.
        """
        self._listeners.append(listener)

    def _publish(self, report: SyncReport) -> None:
        if not report.changed:
            return
        for listener in list(self._listeners):
            try:
                listener(report)
            except Exception:
                log.exception("index change listener failed")

    def sync_names(self, names: Iterable[str], *, wait: bool = True) -> SyncReport:
        """Re-check only the given file names (from change notifications).

        With ``wait=False`` nothing happens if another sync is running, in this process or
        another (used from request handlers, which must not wait for a long sync).

        While the store directory itself is missing, names not found are left as they are: a
        vanished store is not a store of deleted files (the watcher syncs it in full when it
        returns). Errors (a full disk, a locked index) propagate: the caller keeps the names
        for another try (see :mod:`storage.watcher`); with ``wait=False`` (a request's hint,
        for files the watcher sees change too) they are logged at debug level only.
        """
        if not self._write_lock.acquire(blocking=wait):
            return SyncReport()
        try:
            try:
                self._file_lock.acquire(timeout=-1 if wait else 0)
            except Timeout:
                return SyncReport()  # another process is syncing
            try:
                report = self._sync_names(self._require_writer(), names)
            except (OSError, sqlite3.Error) as exc:
                if wait:
                    raise
                log.debug("catching up on changed files failed (%s)", exc)
                return SyncReport()
            finally:
                self._file_lock.release()
        finally:
            self._write_lock.release()
        self._publish(report)
        return report

    def _sync_names(self, conn: sqlite3.Connection, names: Iterable[str]) -> SyncReport:
        listing: dict[str, FileEntry] = {}
        gone: list[str] = []
        for name in sorted(set(names)):
            if not (is_record_name(name) and _is_utf8(name)):
                continue
            entry = stat_entry(self.store, name)
            if entry is None:
                gone.append(name)
                continue
            listing[name] = entry
        changed = []
        for name, entry in listing.items():
            row = conn.execute(
                "SELECT size, mtime_ns, inode FROM files WHERE name = ?", (name,)
            ).fetchone()
            if row is None or FileSignature(*row) != entry.signature:
                changed.append(name)
        if gone and not os.path.isdir(self.store):
            gone = []  # checked after the names' stats: none of them is known to be deleted
        removed = [
            name
            for name in gone
            if conn.execute("SELECT 1 FROM files WHERE name = ?", (name,)).fetchone()
        ]
        report = SyncReport(scanned=len(listing))
        self._apply(conn, changed, removed, listing, report, None)
        return report

    def _require_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            raise RuntimeError("index is not open")
        return self._writer

    def _list_names(self) -> list[str]:
        """The record names in the store, sorted."""
        try:
            names = os.listdir(self.store)
        except FileNotFoundError as exc:
            raise StoreNotFoundError(f"store directory not found: {self.store}") from exc
        found = [name for name in names if is_record_name(name)]
        if unnamed := [name for name in found if not _is_utf8(name)]:
            # The index stores names as text; the tracker only writes ASCII names.
            log.warning(
                "%d file(s) in the store have names that are not valid UTF-8 and are skipped: %s",
                len(unnamed),
                ", ".join(ascii(name) for name in unnamed[:5]),
            )
            found = [name for name in found if _is_utf8(name)]
        found.sort()
        return found

    def _apply(
        self,
        conn: sqlite3.Connection,
        changed: list[str],
        removed: list[str],
        listing: dict[str, FileEntry] | None,
        report: SyncReport,
        progress: ProgressCallback | None,
        *,
        log_changes: bool = True,
    ) -> None:
        """Store the ``changed`` files (sorted) and forget the ``removed`` ones.

        ``listing`` holds what the sync's listing stat'ed of each changed file; without one (a
        cold build), each file is stat'ed just before it is read. Either way, file ``k`` of
        ``changed`` may become run ``first rid + k``: the first rid is read under the file lock
        that every writer of the index holds for its whole sync, so no other process can take
        it meanwhile. With ``log_changes``, added and changed runs go into the change log.
        """
        freed: set[str] = set()
        with conn:
            if log_changes and changed:
                # The newest entries stay at least until the next sync, for processes that
                # follow the log on a timer.
                conn.execute(
                    "DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?",
                    (CHANGE_LOG_KEEP,),
                )
            for name in removed:
                freed.update(self._drop_file(conn, name, report))
        known: dict[str, Refused] = {}
        if listing is not None:
            for name in changed:
                problem = listing[name].problem
                if problem is not None:
                    known[name] = Refused(name, problem)
        jobs = changed
        total = len(changed)
        done = 0
        first_rid = _next_rid(conn)
        staging_parent = self.index_path.parent
        for batch in extract_batches(
            self.store,
            jobs,
            self.max_file_bytes,
            first_rid,
            staging_parent,
            known=known,
            listed=listing is not None,
        ):
            self._store_batch(conn, batch, listing, report, freed, log_changes=log_changes)
            done += len(batch.outcomes)
            if progress is not None:
                progress(done, total)
        if progress is not None:
            progress(total, total)
        if freed:
            self._serve_waiting_duplicates(conn, freed, report, first_rid + len(jobs))

    def _serve_waiting_duplicates(
        self, conn: sqlite3.Connection, freed: set[str], report: SyncReport, first_rid: int
    ) -> None:
        """A duplicate whose winner disappeared is served now."""
        marks = ",".join("?" * len(freed))
        waiting = [
            row[0]
            for row in conn.execute(
                f"SELECT name FROM files WHERE status = {STATUS_DUPLICATE} "
                f"AND execution_id IN ({marks}) ORDER BY name",
                sorted(freed),
            )
        ]
        listing = {
            name: entry for name in waiting if (entry := stat_entry(self.store, name)) is not None
        }
        first_rid = max(first_rid, _next_rid(conn))
        outcomes: list[Outcome] = [
            extract(self.store, name, self.max_file_bytes, first_rid + k)
            for k, name in enumerate(listing)
        ]
        if outcomes:
            self._store_batch(conn, Batch(outcomes, None), listing, report, set())

    def _drop_file(self, conn: sqlite3.Connection, name: str, report: SyncReport) -> list[str]:
        """Forget a file; return the execution ids it served."""
        ids = self._drop_run_of(conn, name)
        conn.execute("DELETE FROM files WHERE name = ?", (name,))
        for eid in ids:
            report.removed += 1
            report.removed_ids.append(eid)
        return ids

    @staticmethod
    def _drop_run_of(conn: sqlite3.Connection, name: str) -> list[str]:
        rows = conn.execute(
            "SELECT rid, execution_id FROM runs WHERE file_name = ?", (name,)
        ).fetchall()
        for rid, _ in rows:
            conn.execute("DELETE FROM items WHERE rid = ?", (rid,))
            conn.execute("DELETE FROM runs WHERE rid = ?", (rid,))
        return [eid for _, eid in rows]

    def _store_batch(
        self,
        conn: sqlite3.Connection,
        batch: Batch,
        listing: dict[str, FileEntry] | None,
        report: SyncReport,
        freed: set[str],
        *,
        log_changes: bool = True,
    ) -> None:
        """Record a batch of read files in one transaction, inserting rows in bulk."""
        if batch.staging is None:
            with conn:
                _Batch(conn, listing, report, freed, log_changes=log_changes).store(batch.outcomes)
            return
        conn.execute("ATTACH DATABASE ? AS staged", (str(batch.staging),))
        try:
            with conn:
                _Batch(conn, listing, report, freed, staged=True, log_changes=log_changes).store(
                    batch.outcomes
                )
        finally:
            conn.execute("DETACH DATABASE staged")


class _Batch:
    """One transaction's worth of read files: decisions per file, rows inserted in bulk."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        listing: dict[str, FileEntry] | None,
        report: SyncReport,
        freed: set[str],
        *,
        staged: bool = False,
        log_changes: bool = True,
    ) -> None:
        """With ``staged``, the rows of the outcomes are in the attached database ``staged``;
        with ``log_changes``, added and changed runs are appended to the change log."""
        self.conn = conn
        self.log_changes = log_changes
        #: (kind, execution id) for the change log, in the order of the report.
        self.changes: list[tuple[str, str]] = []
        self.listing = listing
        self.report = report
        self.freed = freed
        self.staged = staged
        #: rids of staged runs to copy into the index at the next flush.
        self.served: list[int] = []
        #: How many runs the staging file holds (set by :meth:`store`).
        self.staged_runs = 0
        self.runs: list[tuple[Any, ...]] = []
        self.items: list[tuple[Any, ...]] = []
        self.texts: list[tuple[int, str]] = []
        self.files: list[tuple[Any, ...]] = []
        #: execution id -> file name serving it, for ids this batch touches.
        self.holders: dict[str, str] = {}
        self.pending: set[str] = set()

    def _lookup(self, sql: str, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(sql.format(marks=marks), chunk).fetchall())
        return found

    def store(self, outcomes: list[Outcome]) -> None:
        names = [o.name for o in outcomes]
        if self.staged:
            self.staged_runs = sum(isinstance(o, Extracted) for o in outcomes)
        previous = self._lookup(
            "SELECT file_name, execution_id FROM runs WHERE file_name IN ({marks})", names
        )
        self.holders = self._lookup(
            "SELECT execution_id, file_name FROM runs WHERE execution_id IN ({marks})",
            sorted({o.execution_id for o in outcomes if isinstance(o, Extracted)}),
        )
        for outcome in outcomes:
            if isinstance(outcome, Gone):
                # Listed, gone before it was stat'ed (a cold build, on an empty index): as if
                # the listing had not seen it, like a file gone before the listing's stat.
                continue
            prev_eid = previous.get(outcome.name)
            if prev_eid is not None:
                RecordIndex._drop_run_of(self.conn, outcome.name)
                if self.holders.get(prev_eid) == outcome.name:
                    del self.holders[prev_eid]
            if isinstance(outcome, Refused):
                self._file(outcome.name, STATUS_INVALID, outcome.reason, None, outcome.signature)
                self._refused(prev_eid)
            else:
                self._valid(outcome, prev_eid)
        self.flush()

    def _file(
        self,
        name: str,
        status: int,
        reason: str | None,
        eid: str | None,
        signature: FileSignature | None = None,
    ) -> None:
        # What was read (or stat'ed just before reading), when known; else what the listing saw.
        if signature is None:
            if self.listing is None:  # unlisted outcomes all carry their signature
                raise RuntimeError(f"no signature for {name!r}")
            signature = self.listing[name].signature
        self.files.append(
            (name, signature.size, signature.mtime_ns, signature.inode, status, reason, eid)
        )

    def _refused(self, prev_eid: str | None) -> None:
        self.report.invalid += 1
        if prev_eid is not None:
            self.report.removed += 1
            self.report.removed_ids.append(prev_eid)

    def _valid(self, outcome: Extracted, prev_eid: str | None) -> None:
        eid, name = outcome.execution_id, outcome.name
        holder = self.holders.get(eid)
        took_over = False
        if holder is not None and holder != name:
            if name == f"{eid}.json" and holder != f"{eid}.json":
                # The canonically named file takes over; the other becomes the duplicate.
                self.flush()
                RecordIndex._drop_run_of(self.conn, holder)
                self.conn.execute(
                    "UPDATE files SET status = ?, reason = ? WHERE name = ?",
                    (STATUS_DUPLICATE, _duplicate_reason(eid, name), holder),
                )
                took_over = True
            else:
                self._file(
                    name, STATUS_DUPLICATE, _duplicate_reason(eid, holder), eid, outcome.signature
                )
                self._refused(prev_eid)
                return
        if self.staged:
            self.served.append(outcome.rid)
        else:
            self.runs.append(outcome.run)
            self.items.extend(outcome.items)
            self.texts.extend(outcome.texts)
        self._file(name, STATUS_VALID, None, eid, outcome.signature)
        self.holders[eid] = name
        self.freed.discard(eid)
        if prev_eid is None and not took_over:
            self.report.added += 1
            self.report.added_ids.append(eid)
            kind = "added"
        else:
            self.report.updated += 1
            self.report.changed_ids.append(eid)
            kind = "changed"
            if prev_eid is not None and prev_eid != eid:
                self.report.removed_ids.append(prev_eid)
        if self.log_changes:
            self.changes.append((kind, eid))

    def flush(self) -> None:
        """Insert the rows gathered so far."""
        conn = self.conn
        if self.served:
            # Staged rows: copied by SQLite, for the runs this batch serves.
            if len(self.served) == self.staged_runs:
                # Every staged run (the usual case): the tables are copied whole.
                served: tuple[str, ...] = ()
                picked = "IS NOT NULL"
            else:
                served = (orjson.dumps(self.served).decode(),)
                picked = "IN (SELECT value FROM json_each(?))"
            conn.execute(f"INSERT INTO runs SELECT * FROM staged.runs WHERE c0 {picked}", served)
            conn.execute(f"INSERT INTO items SELECT * FROM staged.items WHERE c0 {picked}", served)
            conn.execute(
                "INSERT INTO item_text (rowid, content) SELECT rowid, content FROM staged.texts "
                f"WHERE rowid >> {ITEM_BITS} {picked}",
                served,
            )
            self.served = []
        conn.executemany(INSERT_RUN, self.runs)
        conn.executemany(INSERT_ITEM, self.items)
        conn.executemany("INSERT INTO item_text (rowid, content) VALUES (?, ?)", self.texts)
        conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", self.files)
        conn.executemany("INSERT INTO changes (kind, execution_id) VALUES (?, ?)", self.changes)
        self.runs, self.items, self.texts, self.files, self.changes = [], [], [], [], []


def _create_indexes(conn: sqlite3.Connection) -> None:
    """Create the secondary indexes of a freshly built file, sorting on helper threads.

    Nothing else runs at the end of a cold build, so the cores the worker processes used are
    free: SQLite's sorter hands sorted runs to :data:`_SORT_THREADS` helper threads, which it
    does only when it may spill them into temporary files (in the system's temporary folder;
    they stay in the operating system's cache). About a fifth less time for the indexes of
    100,000 records. On one core, or where no temporary file can be made, the indexes are
    sorted in memory on this thread.
    """
    if _SORT_THREADS:
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute(f"PRAGMA threads={_SORT_THREADS}")
        conn.execute(f"PRAGMA cache_size={_SORT_CACHE_KIB}")  # runs of ~4 MB: sorted while read
        try:
            with conn:
                conn.executescript(INDEX_DDL)
            return
        except sqlite3.OperationalError as exc:
            log.info("sorting index entries in memory (%s)", exc)
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA threads=0")
    with conn:
        conn.executescript(INDEX_DDL)  # the indexes made before an error are kept


def _set_automerge(conn: sqlite3.Connection, segments: int) -> None:
    """Set how many full-text segments FTS5 merges as it writes (0: none but crisis merges)."""
    with conn:
        conn.execute("INSERT INTO item_text (item_text, rank) VALUES ('automerge', ?)", (segments,))


def _next_rid(conn: sqlite3.Connection) -> int:
    """The first rid never handed out (rids are never reused, see storage.schema)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
    return (row[0] if row else 0) + 1


def _duplicate_reason(eid: str, served_from: str) -> str:
    return f"duplicate execution_id '{eid}': already served from {served_from}"


def _is_utf8(name: str) -> bool:
    """Whether a listed name is text (undecodable bytes come back as lone surrogates)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _quick_check(conn: sqlite3.Connection) -> None:
    """Raise ``sqlite3.DatabaseError`` unless ``PRAGMA quick_check`` finds the file sound.

    It reads every page (b-tree structure, record formats, NOT NULL constraints; not index
    content against tables): measured 0.23 s cold and 0.04 s warm for a 10,000-run index
    (23 MB), 0.3 s for 100,000 runs (236 MB). Damage it misses, or damage done after the open,
    shows as errors in the queries that read it (not healed while running).
    """
    rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    if [tuple(row) for row in rows] != [("ok",)]:
        raise sqlite3.DatabaseError(
            "index fails quick_check: " + "; ".join(str(row[0]) for row in rows)
        )


def _remove_database(path: str) -> None:
    """Delete an SQLite file with its companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")


def _fetched(cursor: sqlite3.Cursor, size: int = 2000) -> Iterator[Any]:
    """The rows of a query, fetched a few thousand at a time."""
    while rows := cursor.fetchmany(size):
        yield from rows


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
