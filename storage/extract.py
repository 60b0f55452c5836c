"""Turning one record file into the rows the index stores: the unit of work of every sync.

Kept apart from the index so that a large sync can run it in worker processes: it returns the
finished rows as plain tuples (cheap to send between processes, and inserted as they are), so
the index only decides which file serves which run and inserts. The index hands out each file's
``rid`` before the file is read, so rows need no rewriting afterwards. Small syncs call it
inline; both paths produce identical rows.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final, NamedTuple

from storage.models import ExecutionRecord
from storage.reader import FileSignature, InvalidRecordError, parse_record, read_file
from storage.schema import ITEM_BITS

log = logging.getLogger(__name__)

#: Below this many files, parsing in worker processes costs more than it saves.
PARALLEL_THRESHOLD: Final = 3000
_CHUNK: Final = 250

RunRow = tuple[Any, ...]
"""A row of ``runs``: rid, execution_id .. size (see storage.schema)."""
ItemRow = tuple[Any, ...]
"""A row of ``items``: rid, pos .. config_used."""
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


def timestamp_key(record: ExecutionRecord) -> str:
    """The wall-clock sort key of a record: naive local time compared as written."""
    return record.timestamp.replace(tzinfo=None).isoformat(timespec="microseconds")


def rows_of(name: str, record: ExecutionRecord, signature: FileSignature, rid: int) -> Extracted:
    """The index rows of a validated record, to be stored as run ``rid``."""
    size = signature.size
    ts = timestamp_key(record)
    duration = record.total_execution_time
    run = (
        rid,
        record.execution_id,
        name,
        record.config_name,
        ts,
        record.timestamp.isoformat(),
        ts[:10],
        record.user_id,
        record.session_id,
        record.execution_mode,
        record.safety_level,
        None if record.used_seed is None else str(record.used_seed),
        -1.0 if duration is None else float(duration),
        None if duration is None else float(duration),
        record.taxonomy_version,
        len(record.items),
        size,
    )
    items = [
        (
            rid,
            pos,
            item.sequence_number,
            item.item_type,
            item.media_type,
            item.stage,
            item.stage_iteration,
            item.loop_iteration,
            item.model_used,
            item.backend_type,
            item.config_used,
        )
        for pos, item in enumerate(record.items)
    ]
    base = rid << ITEM_BITS
    texts = [(base | pos, item.content) for pos, item in enumerate(record.items) if item.content]
    return Extracted(name, signature, record.execution_id, rid, run, items, texts)


def extract(store: Path, name: str, max_bytes: int, rid: int) -> Extracted | Refused:
    """Read one file of the store into index rows for run ``rid``, or say why it cannot be
    served."""
    try:
        data, signature = read_file(store, name, max_bytes=max_bytes)
        record = parse_record(data)
    except InvalidRecordError as exc:
        return Refused(name, exc.reason)
    return rows_of(name, record, signature, rid)


def _extract_chunk(
    store: Path, jobs: Sequence[str], max_bytes: int, first_rid: int
) -> list[Extracted | Refused]:
    return [extract(store, name, max_bytes, first_rid + k) for k, name in enumerate(jobs)]


def _quiet_collector() -> None:
    """Worker set-up: validation allocates many short-lived objects and no cycles, so the
    cyclic collector mostly rescans the same survivors (about 10 % of a worker's time)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def extract_all(
    store: Path, jobs: Sequence[str], max_bytes: int, first_rid: int
) -> Iterator[Extracted | Refused]:
    """Extract every named file, in order; in worker processes when there are many.

    The file ``jobs[k]`` is given the rid ``first_rid + k`` (used only if it is served).

    Workers are forked when this process runs no other thread (the CLI before serving), and
    spawned otherwise (forking a threaded server is unsafe). If workers cannot be started or
    die, the remaining files are read inline: the result is the same, only slower.
    """
    workers = min((os.cpu_count() or 1) - 1, 4)  # the calling process inserts meanwhile
    if len(jobs) < PARALLEL_THRESHOLD or workers < 1:
        for k, name in enumerate(jobs):
            yield extract(store, name, max_bytes, first_rid + k)
        return
    done = 0
    method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
    chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
    with _collector_relaxed():
        try:
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=get_context(method), initializer=_quiet_collector
            ) as pool:
                for results in pool.map(
                    _extract_chunk,
                    [store] * len(chunks),
                    chunks,
                    [max_bytes] * len(chunks),
                    range(first_rid, first_rid + len(jobs), _CHUNK),
                ):
                    done += len(results)
                    yield from results
        except (BrokenProcessPool, OSError) as exc:
            log.warning("parallel indexing unavailable (%s); reading files inline", exc)
    for k in range(done, len(jobs)):
        yield extract(store, jobs[k], max_bytes, first_rid + k)


@contextlib.contextmanager
def _collector_relaxed() -> Iterator[None]:
    """Collect cycles less often while rows stream in (every row is garbage a moment later)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 50_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
