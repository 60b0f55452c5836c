"""Turning one record file into the rows the index stores: the unit of work of every sync.

The index hands out each file's ``rid`` before the file is read, so the rows come out finished
and the index only decides which file serves which run. Small syncs extract inline and carry
the rows in the outcomes. A large sync runs the extraction in worker processes, which also
write the rows into a *staging file* per slice of the store (an SQLite file in a private folder
beside the index): the index then copies the rows it serves with ``INSERT ... SELECT``, so no
row is sent between processes or bound value by value by the process that writes the index.
Both paths produce identical rows.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from itertools import chain
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final, NamedTuple

from storage.fields import ItemFields, RecordFields, parse_index_record
from storage.reader import (
    FileSignature,
    InvalidRecordError,
    open_directory,
    read_file,
    stat_entry,
)
from storage.schema import (
    ITEM_BITS,
    ITEM_COLUMN_NAMES,
    ITEM_WIDTH,
    RUN_COLUMN_NAMES,
    RUN_WIDTH,
    STAGING_DDL,
)

log = logging.getLogger(__name__)

#: Below this many files, parsing in worker processes costs more than it saves.
PARALLEL_THRESHOLD: Final = 3000
#: Files per batch: one transaction of the index, one staging file of a worker.
BATCH_SIZE: Final = 2500
#: The first batches of the workers are smaller: the index starts copying rows sooner instead
#: of waiting, idle, for the first full batch.
FIRST_BATCH_SIZE: Final = 500
#: Rows bound per INSERT statement when a worker writes a staging file.
ROWS_PER_INSERT: Final = 100
#: What a staging file is given for None. Python 3.11's sqlite3 binds None only after looking
#: for an adapter (slow, and an item's rows are nearly a third None); a float is bound
#: directly, and SQLite stores a NaN as NULL, so the rows copied into the index hold NULL as
#: before (tests compare them with rows bound inline).
#: The index never holds a NaN: the models refuse non-finite numbers.
_NULL: Final = float("nan")

RunRow = tuple[Any, ...]
"""A row of ``runs``, values in column order (see storage.schema)."""
ItemRow = tuple[Any, ...]
"""A row of ``items``, values in column order."""
TextRow = tuple[int, str]
"""A row of ``item_text``: rowid (``rid << ITEM_BITS | pos``), content."""


class Extracted(NamedTuple):
    """The rows of one valid record file, and the signature of the bytes they came from.

    A named tuple rather than a dataclass: a large sync sends 100,000 of these from worker
    processes, and a tuple is the cheapest thing to unpickle.
    """

    name: str
    signature: FileSignature
    execution_id: str
    rid: int
    run: RunRow
    items: list[ItemRow]
    texts: list[TextRow]


class Refused(NamedTuple):
    """A file that cannot be served, and why."""

    name: str
    reason: str
    #: The file's signature as stat'ed before it was read; None: the sync's listing has it.
    signature: FileSignature | None = None


class Gone(NamedTuple):
    """A file that was listed but was gone when its turn came (see :func:`extract_unlisted`)."""

    name: str


Outcome = Extracted | Refused | Gone


class Batch(NamedTuple):
    """The outcomes of consecutive files, in order.

    With ``staging`` set, the rows of the valid files are in that SQLite file (tables of
    :data:`storage.schema.STAGING_DDL`) and the outcomes carry none; the file is deleted once
    the consumer has moved on to the next batch.
    """

    outcomes: list[Outcome]
    staging: Path | None


def timestamp_key(timestamp: datetime) -> str:
    """The wall-clock sort key of a record's timestamp: naive local time compared as written."""
    return timestamp.replace(tzinfo=None).isoformat(timespec="microseconds")


#: The columns of ``runs`` computed by :func:`rows_of`; every other one holds the record field
#: of its name.
_COMPUTED_RUN: Final = (
    "rid",
    "file_name",
    "ts",
    "ts_raw",
    "day",
    "used_seed",
    "duration",
    "total_execution_time",
    "item_count",
    "size",
)
#: The columns of ``items`` computed by :func:`rows_of`, and those holding an item field under
#: another name; every other one holds the item field of its name.
_COMPUTED_ITEM: Final = ("rid", "pos")
_ITEM_SOURCES: Final = {"seq": "sequence_number", "backend_type": "backend"}

#: The record and item fields the index holds as they are, column by column.
COPIED_RUN_FIELDS: Final = tuple(c for c in RUN_COLUMN_NAMES if c not in _COMPUTED_RUN)
COPIED_ITEM_FIELDS: Final = tuple(
    _ITEM_SOURCES.get(c, c) for c in ITEM_COLUMN_NAMES if c not in _COMPUTED_ITEM
)


def _compiled(code: str) -> Any:
    """A function compiled from ``code``, a template filled with column names only.

    The row builders below are written out from the column lists once, as ``dataclasses``
    writes an ``__init__``: a sync builds a row for every item of every file, and attribute
    reads written out take half the time of ``operator.attrgetter`` or a loop over names.
    """
    if not all(name.isidentifier() for name in (*RUN_COLUMN_NAMES, *ITEM_COLUMN_NAMES)):
        raise ValueError("index column names must be Python identifiers")
    return eval(code, {"enumerate": enumerate})  # noqa: S307 - no outside text in it


#: ``_run_row(record, **computed)``: the run row, the computed columns given by name.
_run_row: Final[Callable[..., RunRow]] = _compiled(
    f"lambda record, {', '.join(_COMPUTED_RUN)}: ("
    + ", ".join(c if c in _COMPUTED_RUN else f"record.{c}" for c in RUN_COLUMN_NAMES)
    + ",)"
)
#: ``_item_rows(rid, items)``: the rows of a record's items, in file order.
_item_rows: Final[Callable[[int, list[ItemFields]], list[ItemRow]]] = _compiled(
    "lambda rid, items: [(rid, pos, "
    + ", ".join(f"item.{_ITEM_SOURCES.get(c, c)}" for c in ITEM_COLUMN_NAMES[2:])
    + ") for pos, item in enumerate(items)]"
)
assert ITEM_COLUMN_NAMES[:2] == _COMPUTED_ITEM


def rows_of(
    name: str, record: RecordFields, timestamp: datetime, signature: FileSignature, rid: int
) -> Extracted:
    """The index rows of a validated record (as :func:`parse_index_record` gives it), to be
    stored as run ``rid``."""
    ts = timestamp_key(timestamp)
    duration = record.total_execution_time
    seed = record.used_seed
    items = record.items
    run = _run_row(
        record,
        rid=rid,
        file_name=name,
        ts=ts,
        ts_raw=timestamp.isoformat(),
        day=ts[:10],
        used_seed=None if seed is None else str(seed),
        duration=-1.0 if duration is None else float(duration),
        total_execution_time=None if duration is None else float(duration),
        item_count=len(items),
        size=signature.size,
    )
    item_rows = _item_rows(rid, items)
    base = rid << ITEM_BITS
    texts = [(base | pos, item.content) for pos, item in enumerate(items) if item.content]
    return Extracted(name, signature, record.execution_id, rid, run, item_rows, texts)


def extract(store: Path, name: str, max_bytes: int, rid: int) -> Extracted | Refused:
    """Read one file of the store into index rows for run ``rid``, or say why it cannot be
    served."""
    try:
        data, signature = read_file(store, name, max_bytes=max_bytes)
        record, timestamp = parse_index_record(data)
    except InvalidRecordError as exc:
        return Refused(name, exc.reason)
    try:
        return rows_of(name, record, timestamp, signature, rid)
    except (ValueError, OverflowError, TypeError) as exc:
        # The models keep every value storable; should one slip past them, it costs its own
        # file only, never the sync (which would stop the index for the whole store).
        log.error("%s: valid, but cannot be indexed (%s)", name, exc)
        return Refused(name, f"cannot be indexed ({type(exc).__name__}: {exc})")


def extract_unlisted(
    store: Path, name: str, max_bytes: int, rid: int, dir_fd: int | None = None
) -> Outcome:
    """:func:`extract` for a file the sync listed by name only (a cold build, where no index
    row needs comparing).

    A file that reads and validates is done: its signature is the open file's before the read,
    what a listing's stat would have given. Any other file is taken again the way a listing
    takes it: stat'ed first (a file that cannot even be stat'ed gets the listing's reason, a
    file gone since the listing is :class:`Gone`), then read again, so that a refused file is
    recorded with the signature seen before reading it. Only refused files pay for the second
    look, and the valid ones for no stat of their own.
    """
    outcome = extract(store, name, max_bytes, rid)
    if isinstance(outcome, Extracted):
        return outcome
    entry = stat_entry(store, name, dir_fd)
    if entry is None:
        return Gone(name)
    if entry.problem is not None:
        return Refused(name, entry.problem, entry.signature)
    outcome = extract(store, name, max_bytes, rid)
    if isinstance(outcome, Refused):
        return outcome._replace(signature=entry.signature)
    return outcome


def _extract_all(
    store: Path,
    names: Sequence[str],
    max_bytes: int,
    first_rid: int,
    known: Mapping[str, Refused],
    listed: bool,
) -> Iterator[Outcome]:
    """The outcomes of ``names`` in order: the ``known`` ones as given, the others read."""
    with contextlib.nullcontext(None) if listed else open_directory(store) as dir_fd:
        for k, name in enumerate(names):
            refused = known.get(name)
            if refused is not None:
                yield refused
            elif listed:
                yield extract(store, name, max_bytes, first_rid + k)
            else:
                yield extract_unlisted(store, name, max_bytes, first_rid + k, dir_fd)


def _extract_staged(
    store: Path,
    names: Sequence[str],
    max_bytes: int,
    first_rid: int,
    staging: Path,
    known: Mapping[str, Refused],
    listed: bool,
) -> list[Outcome]:
    """Worker task: extract ``names`` and write their rows into a new staging file."""
    outcomes: list[Outcome] = []
    runs: list[RunRow] = []
    items: list[ItemRow] = []
    texts: list[TextRow] = []
    for outcome in _extract_all(store, names, max_bytes, first_rid, known, listed):
        if isinstance(outcome, Extracted):
            runs.append(outcome.run)
            items.extend(outcome.items)
            texts.extend(outcome.texts)
            outcome = outcome._replace(run=(), items=[], texts=[])
        outcomes.append(outcome)
    conn = sqlite3.connect(staging)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        with conn:
            conn.executescript(STAGING_DDL)
            _insert_all(conn, "runs", RUN_WIDTH, runs)
            _insert_all(conn, "items", ITEM_WIDTH, items)
            _insert_all(conn, "texts", 2, texts)
    finally:
        conn.close()
    return outcomes


def _insert_all(
    conn: sqlite3.Connection, table: str, width: int, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` into a staging table, :data:`ROWS_PER_INSERT` rows per statement (about
    a fifth less time than one execution per row), with None bound as :data:`_NULL`."""
    one = f"({', '.join('?' * width)})"
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    if whole:
        sql = f"INSERT INTO {table} VALUES {', '.join([one] * ROWS_PER_INSERT)}"
        cursor = conn.cursor()
        null = _NULL
        for start in range(0, whole, ROWS_PER_INSERT):
            values = chain.from_iterable(rows[start : start + ROWS_PER_INSERT])
            cursor.execute(sql, [null if value is None else value for value in values])
    if whole < len(rows):
        conn.executemany(f"INSERT INTO {table} VALUES {one}", rows[whole:])


def _quiet_collector() -> None:
    """Worker set-up: validation allocates many short-lived objects and no cycles, so the
    cyclic collector would mostly rescan the same survivors, for nothing."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def worker_count() -> int:
    """Worker processes for a large sync: one per core (up to 4). The writing process mostly
    waits for SQLite's copies meanwhile; a single core extracts inline."""
    return min(os.cpu_count() or 1, 4)


def extract_batches(
    store: Path,
    jobs: Sequence[str],
    max_bytes: int,
    first_rid: int,
    staging_parent: Path,
    *,
    known: Mapping[str, Refused] | None = None,
    listed: bool = True,
) -> Iterator[Batch]:
    """Extract every named file, in order, a batch at a time; in worker processes when there
    are many, with their rows in staging files in a private folder of ``staging_parent``.

    The file ``jobs[k]`` is given the rid ``first_rid + k`` (used only if it is served). Files
    in ``known`` are not read: their outcome is given. With ``listed`` false the files were
    listed by name only and each is stat'ed just before it is read (:func:`extract_unlisted`).

    Workers are forked when this process runs no other thread (the CLI before serving), and
    spawned otherwise (forking a threaded server is unsafe). If workers cannot be started or
    die, the remaining files are read inline: the result is the same, only slower. The staging
    folder is removed when the sync ends, however it ends (and one left by a process that no
    longer runs is removed by the next large sync).
    """
    workers = worker_count()
    known = known or {}
    done = 0
    if len(jobs) >= PARALLEL_THRESHOLD and workers >= 2:
        try:
            with _staging_folder(staging_parent) as folder, _collector_relaxed():
                batches = _in_workers(
                    store, jobs, max_bytes, first_rid, folder, workers, known, listed
                )
                for batch in batches:
                    done += len(batch.outcomes)
                    yield batch
                    if batch.staging is not None:
                        batch.staging.unlink()
        except (BrokenProcessPool, OSError, sqlite3.Error) as exc:
            log.warning("parallel indexing unavailable (%s); reading files inline", exc)
    for start in range(done, len(jobs), BATCH_SIZE):
        names = jobs[start : start + BATCH_SIZE]
        outcomes = list(_extract_all(store, names, max_bytes, first_rid + start, known, listed))
        yield Batch(outcomes, None)


def _in_workers(
    store: Path,
    jobs: Sequence[str],
    max_bytes: int,
    first_rid: int,
    folder: Path,
    workers: int,
    known: Mapping[str, Refused],
    listed: bool,
) -> Iterator[Batch]:
    """The batches, extracted by ``workers`` processes a few batches ahead of the consumer
    (so that staging files on disk stay few however large the store)."""
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    spans = _spans(len(jobs), min(FIRST_BATCH_SIZE, BATCH_SIZE), workers)
    pending: deque[tuple[Future[list[Outcome]], Path]] = deque()
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context(method), initializer=_quiet_collector
    )

    def submit() -> None:
        span = next(spans, None)
        if span is not None:
            start, stop = span
            staging = folder / f"{start:012d}.sqlite3"
            names = jobs[start:stop]
            given = {name: known[name] for name in names if name in known}
            args = (store, names, max_bytes, first_rid + start, staging, given, listed)
            pending.append((pool.submit(_extract_staged, *args), staging))

    try:
        for _ in range(2 * workers):
            submit()
        while pending:
            future, staging = pending.popleft()
            outcomes = future.result()
            submit()
            yield Batch(outcomes, staging)
    finally:
        # On an error or an abandoned sync, do not wait for the slices nobody will read.
        pool.shutdown(wait=True, cancel_futures=True)


def _spans(total: int, first: int, workers: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of the worker batches.

    The sizes double from ``first`` (one batch per worker at each size) up to
    :data:`BATCH_SIZE`, so that the index starts copying rows at once and the workers stay
    ahead of it; near the end they shrink again (to a third of what is left per worker, never
    below ``first``), so that no worker is left alone with a large last batch while the other
    cores wait for it. About a tenth less time for a cold build of 10,000 files.
    """
    start = 0
    k = 0
    while start < total:
        rising = first << min(k // workers, 16)
        falling = max(first, (total - start) // (3 * workers))
        size = min(BATCH_SIZE, rising, falling)
        yield start, min(start + size, total)
        start += size
        k += 1


_STAGING_PREFIX: Final = ".execgraph-staging-"


@contextlib.contextmanager
def _staging_folder(parent: Path) -> Iterator[Path]:
    """A new private folder for staging files, removed afterwards."""
    _remove_abandoned_staging(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{os.getpid()}-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_abandoned_staging(parent: Path) -> None:
    """Remove staging folders of processes that no longer run (killed mid-sync)."""
    pattern = re.compile(re.escape(_STAGING_PREFIX) + r"(\d+)-")
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in entries:
            match = pattern.match(entry.name)
            if match and entry.is_dir(follow_symlinks=False) and not _alive(int(match[1])):
                shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


@contextlib.contextmanager
def _collector_relaxed() -> Iterator[None]:
    """Collect cycles less often while rows stream in (every row is garbage a moment later)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 50_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
