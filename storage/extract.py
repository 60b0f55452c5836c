"""Turning one record file into the rows the index stores: the unit of work of every sync.

Kept apart from the index so that a large sync can run it in worker processes: it returns plain
tuples (cheap to send between processes), and the index only has to insert them. Small syncs call
it inline; both paths produce identical rows.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final

from storage.models import ExecutionRecord
from storage.reader import FileSignature, InvalidRecordError, parse_record, read_file

log = logging.getLogger(__name__)

#: Below this many files, parsing in worker processes costs more than it saves.
PARALLEL_THRESHOLD: Final = 3000
_CHUNK: Final = 250

RunValues = tuple[Any, ...]
"""runs columns after rid: execution_id .. size (see storage.schema)."""
ItemValues = tuple[Any, ...]
"""items columns after rid: pos .. config_used."""


@dataclass(frozen=True, slots=True)
class Extracted:
    """The rows of one valid record file, and the signature of the bytes they came from."""

    name: str
    signature: FileSignature
    execution_id: str
    run: RunValues
    items: list[ItemValues]
    texts: list[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Refused:
    """A file that cannot be served, and why."""

    name: str
    reason: str


def timestamp_key(record: ExecutionRecord) -> str:
    """The wall-clock sort key of a record: naive local time compared as written."""
    return record.timestamp.replace(tzinfo=None).isoformat(timespec="microseconds")


def rows_of(name: str, record: ExecutionRecord, signature: FileSignature) -> Extracted:
    """The index rows of a validated record."""
    size = signature.size
    ts = timestamp_key(record)
    duration = record.total_execution_time
    run = (
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
    texts = [(pos, item.content) for pos, item in enumerate(record.items) if item.content]
    return Extracted(name, signature, record.execution_id, run, items, texts)


def extract(store: Path, name: str, max_bytes: int) -> Extracted | Refused:
    """Read one file of the store into index rows, or say why it cannot be served."""
    try:
        data, signature = read_file(store, name, max_bytes=max_bytes)
        record = parse_record(data)
    except InvalidRecordError as exc:
        return Refused(name, exc.reason)
    return rows_of(name, record, signature)


def _extract_chunk(store: Path, jobs: Sequence[str], max_bytes: int) -> list[Extracted | Refused]:
    return [extract(store, name, max_bytes) for name in jobs]


def extract_all(store: Path, jobs: Sequence[str], max_bytes: int) -> Iterator[Extracted | Refused]:
    """Extract every named file, in order; in worker processes when there are many.

    Workers are forked when this process runs no other thread (the CLI before serving), and
    spawned otherwise (forking a threaded server is unsafe). If workers cannot be started or
    die, the remaining files are read inline: the result is the same, only slower.
    """
    workers = min((os.cpu_count() or 1) - 1, 4)  # the calling process inserts meanwhile
    done = 0
    if len(jobs) >= PARALLEL_THRESHOLD and workers >= 1:
        method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
        chunks = [jobs[i : i + _CHUNK] for i in range(0, len(jobs), _CHUNK)]
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as pool:
                for results in pool.map(
                    _extract_chunk, [store] * len(chunks), chunks, [max_bytes] * len(chunks)
                ):
                    done += len(results)
                    yield from results
        except (BrokenProcessPool, OSError) as exc:
            log.warning("parallel indexing unavailable (%s); reading files inline", exc)
    for name in jobs[done:]:
        yield extract(store, name, max_bytes)
